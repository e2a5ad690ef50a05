/**
 * The JSON Schema of MOVA documents, generated from the zod schemas (the input side, so
 * fields with defaults are optional) for editors and other tools. `npm run schema` writes
 * it to schema/mova.schema.json; a test checks the committed file is current. It accepts
 * both forms: the sections form (the model) and the specification's `classes` form.
 */
import * as z from "zod";
import {
  Contract,
  Instruction,
  Intent,
  MovaDocument,
  Profile,
  Protocol,
  SessionDefaults,
  Tool,
} from "./schema.ts";

export const MOVA_SCHEMA_ID = "urn:mova:schema:document:2";

/** A class of the classes form: one object or a list of them. */
const oneOrMany = <T extends z.ZodType>(schema: T) => z.union([schema, z.array(schema)]);

/**
 * The classes as written (classes.ts reads them into the sections form). A document has
 * either sections or `classes`; the schema offers both and the validator says which it read.
 */
const Classes = z
  .object({
    intent: oneOrMany(Intent),
    protocol: oneOrMany(Protocol),
    tool_api: oneOrMany(
      Tool.extend({
        id: Tool.shape.id.optional(),
        endpoint: Tool.shape.endpoint.optional(),
        url: z.string().min(1).optional().describe("the endpoint"),
        body: z.record(z.string(), z.unknown()).optional().describe("the JSON body (POST, PUT, PATCH)"),
      }),
    ),
    session: SessionDefaults,
    profile: oneOrMany(Profile),
    contract: oneOrMany(Contract),
    instruction: oneOrMany(
      Instruction.extend({
        title: Instruction.shape.title.optional(),
        content: Instruction.shape.content.optional(),
        text: z.string().optional().describe("the instruction's content"),
      }),
    ),
  })
  .partial()
  .describe("the specification's classes form: each class one object or a list of them");

export function movaJsonSchema(): Record<string, unknown> {
  const generated = z.toJSONSchema(MovaDocument.extend({ classes: Classes.optional() }), {
    io: "input",
    target: "draft-2020-12",
  }) as Record<string, unknown>;
  const { $schema, ...rest } = generated;
  return {
    $schema,
    $id: MOVA_SCHEMA_ID,
    title: "MOVA document",
    description:
      "A MOVA 2.x document, in the sections form (intents, protocols, tools, instructions, profiles, contracts) or in the specification's classes form ({ version, classes: { intent, protocol, tool_api, session, profile, contract, instruction } }, each class one object or a list). Unknown fields are allowed (the validator warns about them).",
    ...rest,
  };
}

/** The file's exact text: stable key order, two-space indent, final newline. */
export function movaJsonSchemaText(): string {
  return `${JSON.stringify(movaJsonSchema(), null, 2)}\n`;
}
