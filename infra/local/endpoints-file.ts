/**
 * `.mova/endpoints.json`: where a running `npm run dev` can be reached, so that local tools
 * (`mova analyze --document …`) find its DynamoDB without being told. Written when the stack
 * is up, removed when it stops; the pid tells a stale file (a killed process) from a live one.
 * Only endpoints and resource names go in it: no keys or tokens.
 */
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import path from "node:path";

const ENDPOINTS_FILE = path.join(".mova", "endpoints.json");

const SHARED = [
  "AWS_ENDPOINT_URL_DYNAMODB",
  "AWS_ENDPOINT_URL_SQS",
  "AWS_REGION",
  "DOCUMENTS_TABLE",
  "EXECUTIONS_TABLE",
  "PATTERNS_TABLE",
  "ANALYSIS_QUEUE_URL",
  "ANALYSIS_PRIORITY_QUEUE_URL",
  "TRIGGER_QUEUE_URL",
] as const;

export function writeEndpointsFile(root: string, env: Record<string, string>, apiUrl?: string): string {
  const file = path.join(root, ENDPOINTS_FILE);
  mkdirSync(path.dirname(file), { recursive: true });
  const endpoints: Record<string, string | number> = { pid: process.pid };
  if (apiUrl) endpoints.API_URL = apiUrl;
  for (const name of SHARED) if (env[name]) endpoints[name] = env[name];
  writeFileSync(file, `${JSON.stringify(endpoints, null, 2)}\n`);
  return file;
}

export function removeEndpointsFile(root: string): void {
  rmSync(path.join(root, ENDPOINTS_FILE), { force: true });
}
