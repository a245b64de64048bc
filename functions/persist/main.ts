import { natsDeliveryBus } from "../../lib/adapters/nats"
import { natsRefusalNotices } from "../../lib/adapters/nats-refusals"
import { natsStoredEventLog } from "../../lib/adapters/nats-stored"
import { pgSequencerStore } from "../../lib/adapters/pg-sequencer"
import { loadConfig, processSource } from "../../lib/config"
import { closeConnections, openConnections } from "../../lib/function/connections"
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
    // Pipelined: the sequencer's transaction takes two round trips (pg-transaction.ts).
    const { pool, nc } = await openConnections("persist", config, log, { pipeline: true })
    return {
      pool,
      nc,
      sequencer: pgSequencerStore(pool),
      deliveries: natsDeliveryBus(nc),
      stored: natsStoredEventLog(nc),
      refusals: natsRefusalNotices(nc),
      now: () => new Date(),
    }
  },
  close: closeConnections,
  routes: [
    ["POST", "/", async (req, ports) => ({ body: await handle(parseInput(eventBatch, req.body), ports) })],
  ],
})
