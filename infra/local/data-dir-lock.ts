import { readFile, rm, writeFile } from "node:fs/promises"
import { join } from "node:path"

/**
 * One stack per data folder: a second `npm start` on the same folder would corrupt the stores.
 * The lock is a pid file; one left by a process that no longer runs is taken over.
 */
export async function acquireDataDirLock(dataDir: string): Promise<() => Promise<void>> {
  const file = join(dataDir, "cove.pid")
  try {
    await writeFile(file, String(process.pid), { flag: "wx" })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== "EEXIST") throw err
    const pid = Number((await readFile(file, "utf8")).trim())
    if (Number.isInteger(pid) && pid > 0 && pid !== process.pid && isRunning(pid)) {
      throw new Error(
        `another Cove stack (pid ${pid}) is using ${dataDir}; stop it, or set COVE_DATA_DIR to another folder`,
      )
    }
    await writeFile(file, String(process.pid))
  }
  return () => rm(file, { force: true })
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    return (err as NodeJS.ErrnoException).code === "EPERM"
  }
}
