/** Writes schema/mova.schema.json from the zod schemas (`npm run schema`). */
import { writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { movaJsonSchemaText } from "../lib/mova/json-schema.ts";

const target = fileURLToPath(new URL("../schema/mova.schema.json", import.meta.url));
writeFileSync(target, movaJsonSchemaText());
console.log(`wrote ${target}`);
