import { type Logger, pino } from "pino"

export type { Logger }

export type LogLevel = "fatal" | "error" | "warn" | "info" | "debug" | "trace" | "silent"

/**
 * The one root logger of a process: JSON lines on stdout. Made in main.ts and passed down;
 * modules add context with `log.child({ fn, conn, req })`.
 */
export function createLogger(options: { name: string; level: LogLevel }): Logger {
  return pino({
    name: options.name,
    level: options.level,
    base: { svc: options.name },
    // Never let a token or password reach the log, even when someone logs a whole object.
    redact: {
      paths: [
        "password",
        "*.password",
        "token",
        "*.token",
        "access_token",
        "refresh_token",
        "*.access_token",
        "*.refresh_token",
        "authorization",
        "*.authorization",
        "headers.authorization",
        "url_presigned",
      ],
      censor: "[redacted]",
    },
    timestamp: pino.stdTimeFunctions.isoTime,
  })
}
