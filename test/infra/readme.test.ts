import { readFileSync } from "node:fs"
import { join } from "node:path"
import t from "tap"
import { configTables, readmeSection } from "../../scripts/config-table"
import { repoRoot } from "../support/bundles"

t.test("the README's configuration tables match lib/settings.ts", async (t) => {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8")
  t.equal(readmeSection(readme), configTables().trim(), "run `npm run docs:config` after changing a setting")
})

t.test("the README keeps the two-command quick start", async (t) => {
  const readme = readFileSync(join(repoRoot, "README.md"), "utf8")
  t.match(readme, /npm start/)
  t.match(readme, /npm test/)
})
