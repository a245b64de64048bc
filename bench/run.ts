/**
 * `npm run bench`: every benchmark script in turn; each prints its figures and baseline ratios.
 * `npx tsx bench/run.ts fanout messaging` runs only the scripts named (without `.ts`).
 */
import { spawnSync } from "node:child_process"
import { join } from "node:path"

const scripts = [
  "startup.ts",
  "auth-hash.ts",
  "edge-upgrades.ts",
  "sequencer.ts",
  "messaging.ts",
  "fanout.ts",
  "files.ts",
  "search.ts",
]
const wanted = process.argv.slice(2)
const unknown = wanted.filter((name) => !scripts.includes(`${name}.ts`))
if (unknown.length > 0) {
  process.stderr.write(`unknown bench: ${unknown.join(", ")}; known: ${scripts.join(", ")}\n`)
  process.exit(2)
}
let failed = 0
for (const script of wanted.length === 0 ? scripts : wanted.map((name) => `${name}.ts`)) {
  process.stdout.write(`\n== ${script}\n`)
  const result = spawnSync(
    join(import.meta.dirname, "..", "node_modules/.bin/tsx"),
    [join(import.meta.dirname, script)],
    {
      stdio: "inherit",
    },
  )
  if (result.status !== 0) failed++
}
process.exit(failed === 0 ? 0 : 1)
