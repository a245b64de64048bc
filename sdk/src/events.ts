/** A small typed event emitter: `on` returns its own unsubscribe function. */
type Handler = (...args: unknown[]) => void

export class Emitter<Events extends { [K in keyof Events]: unknown[] }> {
  private readonly handlers = new Map<keyof Events, Set<Handler>>()

  on<K extends keyof Events>(name: K, handler: (...args: Events[K]) => void): () => void {
    let set = this.handlers.get(name)
    if (set === undefined) {
      set = new Set()
      this.handlers.set(name, set)
    }
    const h = handler as unknown as Handler
    set.add(h)
    return () => {
      set.delete(h)
    }
  }

  /**
   * Calls every handler. One that throws must stop neither the others nor the SDK's own work
   * (ordering, the outbox): its error becomes an "error" event, or, from an "error" handler or
   * with none listening, an uncaught exception on a later tick (where the app's runtime reports it).
   */
  emit<K extends keyof Events>(name: K, ...args: Events[K]): void {
    for (const handler of [...(this.handlers.get(name) ?? [])]) {
      try {
        handler(...args)
      } catch (err) {
        const errors = this.handlers.get("error" as keyof Events)
        if (name === "error" || errors === undefined || errors.size === 0) {
          queueMicrotask(() => {
            throw err
          })
        } else {
          this.emit("error" as K, ...([toError(err)] as unknown as Events[K]))
        }
      }
    }
  }
}

export function toError(err: unknown): Error {
  return err instanceof Error ? err : new Error(String(err))
}
