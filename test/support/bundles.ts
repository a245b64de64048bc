/** Builds bundles for tests with the same esbuild settings as `npm run build`. */
import { mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import type { Test } from "tap"
import { buildFunction, buildProgram } from "../../build"

export const repoRoot = join(import.meta.dirname, "..", "..")

export async function buildTestBundles(
  t: Test,
  functions: Record<string, string>,
): Promise<{ dir: string; serverScript: string }> {
  const dir = await mkdtemp(join(tmpdir(), "cove-build-"))
  t.teardown(() => rm(dir, { recursive: true, force: true }))
  const serverScript = join(dir, "function-server.mjs")
  await Promise.all([
    buildProgram(join(repoRoot, "lib/function/server-main.ts"), serverScript),
    ...Object.entries(functions).map(([name, entry]) =>
      buildFunction(join(repoRoot, entry), join(dir, "functions", name), name),
    ),
  ])
  return { dir, serverScript }
}
