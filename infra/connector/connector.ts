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
  registry: Registry
  log: Logger
}): Promise<Connector> {
  const jsm = await options.nc.jetstreamManager()
  const js = options.nc.jetstream()
  const metrics = connectorMetrics(options.registry)
  await ensureDeadLetterStream(jsm)
  const workers: PartitionWorker[] = []
  const loops: Promise<void>[] = []
  for (const fn of options.stack.functions) {
    const topic = fn.topic
    if (topic === undefined) continue
    await ensureStream(jsm, topic)
    for (let partition = 0; partition < topic.partitions; partition++) {
      const durable = await ensureConsumer(jsm, { ...fn, topic }, partition)
      const worker = new PartitionWorker({
        fn: { ...fn, topic },
        partition,
        durable,
        consumer: await js.consumers.get(topic.stream, durable),
        js,
        functionUrl: `${options.gatewayUrl}/function/${fn.name}`,
        metrics,
        log: options.log.child({ fn: fn.name, partition }),
      })
      workers.push(worker)
      loops.push(
        worker.run().catch((err: unknown) => {
          options.log.error({ err, fn: fn.name, partition }, "connector worker stopped on an error")
        }),
      )
    }
  }
  options.log.info({ workers: workers.length }, "connector started")
  return {
    workers: workers.length,
    async stop() {
      await Promise.all(workers.map((w) => w.stop()))
      await Promise.all(loops)
    },
  }
}
