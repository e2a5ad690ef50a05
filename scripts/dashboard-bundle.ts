/**
 * The dashboard's script: dashboard/main.ts and what it imports (the layout library included)
 * bundled by esbuild into one browser ES module, so the page fetches nothing from elsewhere.
 * `npm run build` writes it to dist/api/dashboard.js, packaged with the API function; the
 * local stack (npm run dev) and the tests bundle it in memory on first request.
 */
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), "..");

export async function bundleDashboard(root: string = ROOT): Promise<string> {
  const result = await build({
    entryPoints: [path.join(root, "dashboard", "main.ts")],
    bundle: true,
    write: false,
    format: "esm",
    platform: "browser",
    target: "es2022",
    minify: true,
    legalComments: "inline",
    logLevel: "warning",
  });
  return result.outputFiles[0]!.text;
}

/** Bundles on the first call and keeps the result (a failed build is tried again next time). */
export function lazyDashboardBundle(root: string = ROOT): () => Promise<string> {
  let script: Promise<string> | undefined;
  return () => {
    script ??= bundleDashboard(root).catch((error: unknown) => {
      script = undefined;
      throw error;
    });
    return script;
  };
}
