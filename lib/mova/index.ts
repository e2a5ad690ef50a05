/** The MOVA language: schemas, parsing, validation, placeholders, conditions and intents. */
export * from "./schema.ts";
export * from "./parse.ts";
export * from "./validate.ts";
export * from "./placeholders.ts";
export * from "./conditions.ts";
export * from "./intents.ts";
export * from "./steps.ts";
export * from "./json-schema.ts";
