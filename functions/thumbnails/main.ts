import { pgFileStore } from "../../lib/adapters/pg-files"
import { s3ObjectStore } from "../../lib/adapters/s3-objects"
import { sharpThumbnails, thumbnailable } from "../../lib/adapters/sharp-thumbnails"
import { loadConfig, processSource } from "../../lib/config"
import { closeConnections, openConnections, openS3 } from "../../lib/function/connections"
import { defineFunction } from "../../lib/function/harness"
import { parseInput } from "../../lib/function/input"
import { createLogger } from "../../lib/log"
import { eventBatch } from "../../lib/protocol/events"
import { thumbnailsFields } from "../../lib/settings"
import { handle } from "./handler"

const config = loadConfig(thumbnailsFields, processSource())
const log = createLogger({ name: "thumbnails", level: config.logLevel })

export default defineFunction({
  name: "thumbnails",
  log,
  async ports() {
    const { pool, nc } = await openConnections("thumbnails", config, log)
    const s3 = openS3(config)
    return {
      pool,
      nc,
      files: pgFileStore(pool),
      objects: s3ObjectStore(s3, config.s3Bucket),
      thumbnails: sharpThumbnails(),
      thumbnailable,
      maxPixels: config.maxPixels,
      maxSourceBytes: config.maxSourceBytes,
    }
  },
  close: closeConnections,
  routes: [
    ["POST", "/", async (req, ports) => ({ body: await handle(parseInput(eventBatch, req.body), ports) })],
  ],
})
