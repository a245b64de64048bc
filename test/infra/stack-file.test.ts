import { mkdtemp, writeFile } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import t from "tap"
import { loadStack, parseStack, StackFileError } from "../../infra/stack"
import { repoRoot } from "../support/bundles"

t.test("the project's stack.yml is valid", async (t) => {
  const stack = loadStack(join(repoRoot, "stack.yml"))
  const persist = stack.functions.find((f) => f.name === "persist")
  t.ok(persist?.topic, "persist is an event function")
  t.equal(persist?.topic?.stream, "COVE_IN")
  t.equal(persist?.handlerDir, join(repoRoot, "build/functions/persist"))
})

t.test("a malformed stack.yml names every problem", async (t) => {
  const dir = await mkdtemp(join(tmpdir(), "cove-stack-"))
  await writeFile(join(dir, "broken.yml"), "functions: [unclosed")
  t.throws(() => loadStack(join(dir, "broken.yml")), /not valid YAML/)
  t.throws(() => loadStack(join(dir, "absent.yml")), /cannot be read/)

  const err = t.throws(() =>
    parseStack("stack.yml", {
      version: 1,
      provider: { name: "openfaas" },
      functions: {
        good: { lang: "node20", handler: "./a", image: "a", environment: { exec_timeout: "soon" } },
        events: {
          lang: "node20",
          handler: "./b",
          image: "b",
          annotations: { topic: "a.>", "com.cove.partitions": "0", "com.cove.stream": "S" },
        },
      },
    }),
  ) as StackFileError
  t.type(err, StackFileError)
  t.match(err.message, /functions\.good\.environment\.exec_timeout/)
  t.match(err.message, /functions\.events\.annotations\.topic/)
  t.match(err.message, /functions\.events\.annotations\.com\.cove\.partitions/)
})
