/**
 * AWS Systems Manager's JSON protocol on loopback, for the SDK and Powertools Parameters:
 * GetParametersByPath over a fixed table of parameters, every call recorded.
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface SsmDouble {
  url: string;
  calls: Array<{ path: string; decrypt: boolean; recursive: boolean }>;
  close(): Promise<void>;
}

export async function startSsmDouble(parameters: Record<string, string>): Promise<SsmDouble> {
  const calls: SsmDouble["calls"] = [];
  const server: Server = createServer((request, response) => {
    let body = "";
    request.on("data", (chunk) => {
      body += chunk;
    });
    request.on("end", () => {
      const input = JSON.parse(body) as { Path: string; WithDecryption?: boolean; Recursive?: boolean };
      calls.push({
        path: input.Path,
        decrypt: input.WithDecryption === true,
        recursive: input.Recursive === true,
      });
      const prefix = `${input.Path}/`;
      const found = Object.entries(parameters)
        .filter(
          ([name]) =>
            name.startsWith(prefix) && (input.Recursive || !name.slice(prefix.length).includes("/")),
        )
        .map(([Name, Value]) => ({ Name, Value, Type: "SecureString", Version: 1 }));
      response.writeHead(200, { "content-type": "application/x-amz-json-1.1" });
      response.end(JSON.stringify({ Parameters: found }));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    calls,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
