/**
 * The JSON Schema of MOVA documents, generated from the zod schemas (the input side, so
 * fields with defaults are optional) for editors and other tools. `npm run schema` writes
 * it to schema/mova.schema.json; a test checks the committed file is current.
 */
import * as z from "zod";
import { MovaDocument } from "./schema.ts";

export const MOVA_SCHEMA_ID = "urn:mova:schema:document:2";

export function movaJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(MovaDocument, { io: "input", target: "draft-2020-12" }) as Record<
    string,
    unknown
  >;
  const { $schema, ...rest } = generated;
  return {
    $schema,
    $id: MOVA_SCHEMA_ID,
    title: "MOVA document",
    description:
      "A MOVA 2.x document: intents, protocols (multi-step flows), tools (HTTP APIs), instructions, profiles and contracts. Unknown fields are allowed (the validator warns about them).",
    ...rest,
  };
}

/** The file's exact text: stable key order, two-space indent, final newline. */
export function movaJsonSchemaText(): string {
  return `${JSON.stringify(movaJsonSchema(), null, 2)}\n`;
}
