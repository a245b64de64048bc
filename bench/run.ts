/** `npm run bench`: every benchmark script in turn; each prints its figures and baseline ratios. */
import { spawnSync } from "node:child_process"
import { join } from "node:path"

const scripts = [
  "startup.ts",
  "auth-hash.ts",
  "edge-upgrades.ts",
  "sequencer.ts",
  "messaging.ts",
  "files.ts",
  "search.ts",
]
let failed = 0
for (const script of scripts) {
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
