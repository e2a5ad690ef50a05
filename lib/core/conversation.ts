/**
 * A session's conversation, as its memory keeps it: the user's messages and the replies shown
 * to the user, oldest first, bounded by turns and by bytes so that a session's value stays
 * small whatever the chat's length. A turn is one message of one side.
 */
import type { ShownReplies } from "./run.ts";

export interface ConversationTurn {
  role: "user" | "assistant";
  content: string;
}

/** The turns a session keeps at most unless MEMORY_MAX_TURNS says otherwise. */
export const MAX_CONVERSATION_TURNS = 40;
/** The UTF-8 bytes of turn contents a session keeps at most (16 KiB) unless MEMORY_MAX_BYTES says otherwise. */
export const MAX_CONVERSATION_BYTES = 16_384;

/** How much of its conversation a session keeps (MEMORY_MAX_TURNS, MEMORY_MAX_BYTES). */
export interface ConversationBounds {
  maxTurns?: number;
  maxBytes?: number;
}

/**
 * The conversation with `turns` appended, then its oldest turns dropped until it fits the
 * bounds. A single turn longer than the byte bound is cut to it (its start kept).
 */
export function rememberTurns(
  conversation: readonly ConversationTurn[] | undefined,
  turns: readonly ConversationTurn[],
  bounds: ConversationBounds = {},
): ConversationTurn[] {
  const maxTurns = bounds.maxTurns ?? MAX_CONVERSATION_TURNS;
  const maxBytes = bounds.maxBytes ?? MAX_CONVERSATION_BYTES;
  const all = [
    ...(conversation ?? []),
    ...turns.map((turn) => ({ role: turn.role, content: cut(turn.content, maxBytes) })),
  ];
  let kept = all.slice(Math.max(0, all.length - maxTurns));
  let bytes = kept.reduce((sum, turn) => sum + Buffer.byteLength(turn.content, "utf8"), 0);
  let drop = 0;
  while (bytes > maxBytes && drop < kept.length) {
    bytes -= Buffer.byteLength((kept[drop] as ConversationTurn).content, "utf8");
    drop += 1;
  }
  if (drop > 0) kept = kept.slice(drop);
  return kept;
}

/** The UTF-8 bytes of replies a run's state keeps (ShownReplies.last) at most. */
export const SHOWN_REPLIES_MAX_BYTES = 8_192;

/** `shown` with `reply` counted and kept, its oldest replies dropped past the byte bound. */
export function showReply(shown: ShownReplies | undefined, reply: string): ShownReplies {
  const last = [...(shown?.last ?? []), cut(reply, SHOWN_REPLIES_MAX_BYTES)];
  let bytes = last.reduce((sum, text) => sum + Buffer.byteLength(text, "utf8"), 0);
  while (bytes > SHOWN_REPLIES_MAX_BYTES && last.length > 1) {
    bytes -= Buffer.byteLength(last.shift() as string, "utf8");
  }
  return { count: (shown?.count ?? 0) + 1, last };
}

/**
 * The replies of `shown` a session has not remembered yet, oldest first: those past the
 * `remembered` first ones (as many as are still kept).
 */
export function unrememberedReplies(shown: ShownReplies | undefined, remembered: number): string[] {
  if (!shown) return [];
  const unseen = Math.max(0, shown.count - remembered);
  return unseen === 0 ? [] : shown.last.slice(Math.max(0, shown.last.length - unseen));
}

/**
 * The conversation with the replies of `shown` it has not remembered yet (past the
 * `remembered` first ones) added as the assistant's turns; the conversation itself when there
 * are none.
 */
export function withUnrememberedReplies(
  conversation: ConversationTurn[] | undefined,
  shown: ShownReplies | undefined,
  remembered: number,
  bounds: ConversationBounds = {},
): ConversationTurn[] | undefined {
  const replies = unrememberedReplies(shown, remembered);
  if (replies.length === 0) return conversation;
  return rememberTurns(
    conversation,
    replies.map((reply) => ({ role: "assistant" as const, content: reply })),
    bounds,
  );
}

/** The last `count` turns, oldest first (what `memory.turns` / `history` send the model). */
export function lastTurns(
  conversation: readonly ConversationTurn[] | undefined,
  count: number,
): ConversationTurn[] {
  if (!conversation || count <= 0) return [];
  return conversation.slice(Math.max(0, conversation.length - count));
}

function cut(text: string, maxBytes: number): string {
  if (Buffer.byteLength(text, "utf8") <= maxBytes) return text;
  // Cut on a character boundary: decoding a cut buffer could split a multi-byte character.
  let out = "";
  let bytes = 0;
  for (const char of text) {
    const size = Buffer.byteLength(char, "utf8");
    if (bytes + size > maxBytes) break;
    out += char;
    bytes += size;
  }
  return out;
}
