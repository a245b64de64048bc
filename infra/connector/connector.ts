/**
 * Binds each event function of stack.yml (those with a `topic` annotation) to JetStream:
 * one durable consumer and one worker per partition.
 */
import type { NatsConnection } from "nats"
import type { Logger } from "../../lib/log"
import type { Registry } from "../../lib/metrics"
import type { Stack } from "../stack"
import { connectorMetrics } from "./metrics"
import { PartitionWorker } from "./partition-worker"
import { ensureConsumer, ensureDeadLetterStream, ensureStream } from "./streams"

export type Connector = { readonly workers: number; stop(): Promise<void> }

export async function startConnector(options: {
  nc: NatsConnection
  stack: Stack
  /** Base URL of the gateway serving /function/<name>. */
  gatewayUrl: string
  /**
   * Where to POST a function's batches, if not through the gateway: the local stack sends them
   * straight to the function's process, as a connector in Kubernetes may call the function's
   * service. Undefined while the function is restarting (the batch is retried).
   */
  functionUrl?: (name: string) => string | undefined
  registry: Registry
  log: Logger
}): Promise<Connector> {
  const jsm = await options.nc.jetstreamManager()
  const js = options.nc.jetstream()
  const metrics = connectorMetrics(options.registry)
  await ensureDeadLetterStream(jsm)
  const workers: PartitionWorker[] = []
  let stopped = false
  const loops: Promise<void>[] = []
  for (const fn of options.stack.functions) {
    const topic = fn.topic
    if (topic === undefined) continue
    const partitions = await ensureStream(jsm, topic)
    if (partitions > topic.partitions)
      options.log.warn(
        { fn: fn.name, stream: topic.stream, partitions, configured: topic.partitions },
        "the stream has more partitions than stack.yml asks for; serving all of them",
      )
    for (let partition = 0; partition < partitions; partition++) {
      const log = options.log.child({ fn: fn.name, partition })
      const make = async () => {
        // Re-ensured on every (re)start: an operator may have deleted the stream or consumer.
        await ensureStream(jsm, topic)
        const durable = await ensureConsumer(jsm, { ...fn, topic }, partition)
        return new PartitionWorker({
          fn: { ...fn, topic },
          partition,
          durable,
          consumer: await js.consumers.get(topic.stream, durable),
          js,
          functionUrl: () =>
            options.functionUrl === undefined
              ? `${options.gatewayUrl}/function/${fn.name}`
              : options.functionUrl(fn.name),
          metrics,
          log,
        })
      }
      const first = await make()
      workers.push(first)
      loops.push(supervise(first, make, workers, () => stopped, log))
    }
  }
  options.log.info({ workers: workers.length }, "connector started")
  return {
    workers: workers.length,
    async stop() {
      stopped = true
      await Promise.all(workers.map((w) => w.stop()))
      await Promise.all(loops)
    },
  }
}

/**
 * Keeps a partition served: a worker whose loop ends with an error (the consumer was deleted,
 * NATS was unreachable for long) is replaced after a growing delay.
 */
async function supervise(
  first: PartitionWorker,
  make: () => Promise<PartitionWorker>,
  workers: PartitionWorker[],
  isStopped: () => boolean,
  log: Logger,
): Promise<void> {
  let worker = first
  for (let failures = 0; !isStopped(); ) {
    try {
      await worker.run()
      if (isStopped()) return
      failures = 0
      log.warn("connector worker ended; starting a new one")
    } catch (err) {
      failures++
      log.error({ err, failures }, "connector worker failed; starting a new one")
    }
    await new Promise((resolve) => setTimeout(resolve, Math.min(100 * 2 ** failures, 10_000)))
    if (isStopped()) return
    try {
      const next = await make()
      workers[workers.indexOf(worker)] = next
      worker = next
    } catch (err) {
      // The stream or consumer is not reachable yet: try again on the next round.
      failures++
      log.error({ err, failures }, "could not restart the connector worker")
    }
  }
}
