/**
 * Intent recognition: patterns first (whole words, any script, any case), then, when no
 * pattern matches and an LLM is configured, the LLM picks one of the declared intents.
 */
import type { LlmPort } from "../ports.ts";
import { classificationPrompt, intentFromAnswer, matchIntent } from "../mova/intents.ts";
import type { Intent, MovaDocument } from "../mova/schema.ts";

interface IntentRecognition {
  intent?: Intent;
  via: "pattern" | "llm" | "none";
  pattern?: string;
}

/**
 * Recognises the intent of a message: by pattern, else (with an online LLM) by asking the
 * LLM to choose among the declared intents. Never throws: an LLM failure means no intent.
 */
export async function recognizeIntent(
  document: MovaDocument,
  text: string,
  llm?: LlmPort,
  signal?: AbortSignal,
): Promise<IntentRecognition> {
  const matched = matchIntent(document, text);
  if (matched) return { intent: matched.intent, via: "pattern", pattern: matched.pattern };
  if (!llm || llm.offline || document.intents.length === 0 || text.trim() === "") return { via: "none" };
  try {
    const response = await llm.complete(
      {
        messages: [
          { role: "system", content: classificationPrompt(document) },
          { role: "user", content: text },
        ],
        temperature: 0,
        maxTokens: 20,
      },
      signal,
    );
    const intent = intentFromAnswer(document, response.text);
    return intent ? { intent, via: "llm" } : { via: "none" };
  } catch {
    return { via: "none" };
  }
}
