/**
 * `npm run build`: one esbuild bundle per function in stack.yml, in the folder layout the
 * OpenFaaS node20 template expects (handler.js whose module.exports is the handler, plus a
 * package.json), and single-file bundles of the edge, the function server, the connector and
 * the migration runner.
 */
import { readFileSync } from "node:fs"
import { cp, mkdir, rename, rm, writeFile } from "node:fs/promises"
import { basename, join, relative, resolve } from "node:path"
import { type BuildOptions, build } from "esbuild"
import { loadStack } from "./infra/stack"

const root = import.meta.dirname
// stack.yml names these folders as the functions' handlers, so the output folder is fixed.
const out = join(root, "build")

const common: BuildOptions = {
  bundle: true,
  platform: "node",
  target: "node20",
  sourcemap: "linked",
  legalComments: "none",
  logLevel: "warning",
  // Native or optional modules that cannot be inlined: installed beside the bundle.
  external: ["uWebSockets.js", "pg-native", "bufferutil", "utf-8-validate"],
}

/** ESM bundles need `require` for the CommonJS packages esbuild leaves external. */
const esmRequire = {
  js: "import { createRequire as __coveCreateRequire } from 'node:module'; const require = __coveCreateRequire(import.meta.url);",
}

/**
 * Packages a function loads at run time instead of from its bundle (native code that finds its
 * binaries relative to itself). They go into the function's package.json, so the node20
 * template's `npm install` (or the container build) installs them beside handler.js.
 */
const RUNTIME_DEPENDENCIES: Readonly<Record<string, readonly string[]>> = { thumbnails: ["sharp"] }

function runtimeDependencies(name: string): Record<string, string> {
  const pkg = JSON.parse(readFileSync(join(root, "package.json"), "utf8")) as {
    dependencies: Record<string, string>
  }
  const out: Record<string, string> = {}
  for (const dep of RUNTIME_DEPENDENCIES[name] ?? []) {
    const version = pkg.dependencies[dep]
    if (version === undefined) throw new Error(`${name} needs ${dep}, which package.json does not list`)
    out[dep] = version
  }
  return out
}

/** One function bundle in the node20 template's layout: handler.js + package.json. */
export async function buildFunction(entry: string, dir: string, name: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  await Promise.all([
    build({
      ...common,
      entryPoints: [entry],
      outfile: join(dir, "handler.js"),
      format: "cjs",
      // The template does `require('./function/handler')(event, context)`: export the
      // function itself, not an ES module namespace.
      footer: { js: "module.exports = module.exports.default;" },
    }),
    writeFile(
      join(dir, "package.json"),
      `${JSON.stringify(
        {
          name: `cove-${name}`,
          version: "0.1.0",
          private: true,
          main: "handler.js",
          dependencies: runtimeDependencies(name),
        },
        null,
        2,
      )}\n`,
    ),
  ])
}

/** A single-file ESM program (the edge, the function server, the connector, the migrator). */
export async function buildProgram(entry: string, outfile: string): Promise<void> {
  await build({ ...common, entryPoints: [entry], outfile, format: "esm", banner: esmRequire })
}

/**
 * Builds into a fresh folder, then swaps it in with two renames: running programs and tests
 * that load bundles from build/ never see it half-written or missing.
 */
export async function buildAll(): Promise<string[]> {
  const staging = `${out}.next-${process.pid}`
  const previous = `${out}.old-${process.pid}`
  await rm(staging, { recursive: true, force: true })
  const built = await buildInto(staging).catch(async (err: unknown) => {
    // A failed build (a syntax error esbuild reports, say) leaves no half-written folder behind.
    await rm(staging, { recursive: true, force: true })
    throw err
  })
  await rename(out, previous).catch((err: NodeJS.ErrnoException) => {
    // The first build has nothing to move away.
    if (err.code !== "ENOENT") throw err
  })
  await rename(staging, out)
  await rm(previous, { recursive: true, force: true })
  return built
}

/** The web app (web/): one browser bundle plus its page and styles, served as static files. */
async function buildWebApp(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true })
  await Promise.all([
    build({
      bundle: true,
      platform: "browser",
      format: "esm",
      target: ["chrome110", "firefox115", "safari16"],
      minify: true,
      sourcemap: "linked",
      legalComments: "none",
      logLevel: "warning",
      entryPoints: [join(root, "web/src/main.ts")],
      outfile: join(dir, "main.js"),
    }),
    cp(join(root, "web/index.html"), join(dir, "index.html")),
    cp(join(root, "web/styles.css"), join(dir, "styles.css")),
  ])
}

/**
 * The client SDK (sdk/): one ESM bundle for browsers (which the web app imports) and one for
 * Node.js. It has no dependencies of its own; its protocol types are erased.
 */
async function buildSdk(dir: string): Promise<void> {
  const sdk = {
    bundle: true,
    format: "esm",
    sourcemap: "linked",
    legalComments: "none",
    logLevel: "warning",
  } as const
  const entryPoints = [join(root, "sdk/src/index.ts")]
  await Promise.all([
    build({
      ...sdk,
      entryPoints,
      platform: "browser",
      target: ["es2022"],
      outfile: join(dir, "cove-sdk.js"),
    }),
    build({
      ...sdk,
      entryPoints,
      platform: "node",
      target: "node20",
      outfile: join(dir, "cove-sdk.node.js"),
    }),
  ])
}

async function buildInto(staging: string): Promise<string[]> {
  const stack = loadStack(join(root, "stack.yml"))
  const built: string[] = []
  const jobs: Promise<unknown>[] = []
  for (const fn of stack.functions) {
    const dir = join(out, "functions", fn.name)
    if (resolve(fn.handlerDir) !== dir) {
      throw new Error(
        `stack.yml: functions.${fn.name}.handler must be ./${relative(root, dir)} (the build output)`,
      )
    }
    jobs.push(
      buildFunction(
        join(root, "functions", fn.name, "main.ts"),
        join(staging, "functions", fn.name),
        fn.name,
      ),
    )
    built.push(`functions/${fn.name}/handler.js`)
  }
  const programs: Record<string, string> = {
    "function-server.mjs": "lib/function/server-main.ts",
    "gateway.mjs": "gateway/main.ts",
    "connector.mjs": "infra/connector/main.ts",
    "migrate.mjs": "infra/migrations/main.ts",
  }
  for (const [file, entry] of Object.entries(programs)) {
    jobs.push(
      build({
        ...common,
        entryPoints: [join(root, entry)],
        outfile: join(staging, file),
        format: "esm",
        banner: esmRequire,
      }),
    )
    built.push(file)
  }
  jobs.push(cp(join(root, "infra/migrations/sql"), join(staging, "migrations"), { recursive: true }))
  jobs.push(buildSdk(join(staging, "sdk")))
  built.push("sdk/cove-sdk.js", "sdk/cove-sdk.node.js")
  jobs.push(buildWebApp(join(staging, "web")))
  built.push("web/main.js")
  // Every job ends before a failure is reported, so nothing writes into the folder after it is removed.
  const failed = (await Promise.allSettled(jobs)).find((r) => r.status === "rejected")
  if (failed !== undefined) throw failed.reason
  return built
}

if (process.argv[1] !== undefined && basename(process.argv[1]).startsWith("build")) {
  const started = performance.now()
  const built = await buildAll()
  process.stdout.write(
    `built ${built.length} bundles into ${relative(process.cwd(), out) || "."} in ${Math.round(performance.now() - started)} ms\n`,
  )
}
