import { connectNats, natsDeliveryBus } from "../../lib/adapters/nats"
import { createPool } from "../../lib/adapters/pg"
import { pgSequencerStore } from "../../lib/adapters/pg-sequencer"
import { loadConfig, processSource } from "../../lib/config"
import { defineFunction } from "../../lib/function/harness"
import { parseInput } from "../../lib/function/input"
import { createLogger } from "../../lib/log"
import { eventBatch } from "../../lib/protocol/events"
import { functionFields } from "../../lib/settings"
import { handle } from "./handler"

const config = loadConfig(functionFields, processSource())
const log = createLogger({ name: "persist", level: config.logLevel })

export default defineFunction({
  name: "persist",
  log,
  async ports() {
    const pool = createPool({
      url: config.databaseUrl,
      schema: config.pgSchema,
      maxConnections: config.pgPoolMax,
      applicationName: "cove-persist",
    })
    const nc = await connectNats(config.natsUrl, "cove-persist", log)
    return {
      pool,
      nc,
      sequencer: pgSequencerStore(pool),
      deliveries: natsDeliveryBus(nc),
      now: () => new Date(),
    }
  },
  async close(ports) {
    await ports.nc.drain()
    await ports.pool.end()
  },
  routes: [
    ["POST", "/", async (req, ports) => ({ body: await handle(parseInput(eventBatch, req.body), ports) })],
  ],
})
