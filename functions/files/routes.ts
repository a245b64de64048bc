import { AppError } from "../../lib/errors"
import { authed } from "../../lib/function/authed"
import type { FnRequest, RouteHandler } from "../../lib/function/harness"
import { parseInput } from "../../lib/function/input"
import type { Authenticator } from "../../lib/ports"
import { abort, complete, createUpload, download, type FilesPorts, sweep } from "./handler"
import { completeInput, fileParam, uploadInput } from "./input"

export type Ports = FilesPorts & {
  readonly auth: Authenticator
  /** Whether this instance should sweep expired uploads now (functions/files/handler.ts sweepSchedule). */
  readonly sweepDue: (now: Date) => boolean
}

const fileId = (req: FnRequest) => parseInput(fileParam, req.params.id)

/** Our answers about a file are never sniffed into something runnable, nor cached by proxies. */
const SAFE_HEADERS = { "x-content-type-options": "nosniff", "cache-control": "private, no-store" }

export const routes: ReadonlyArray<readonly ["GET" | "POST", string, RouteHandler<Ports>]> = [
  [
    "POST",
    "/uploads",
    authed<Ports>(async (req, p, who) => {
      const answer = await createUpload(parseInput(uploadInput, req.body), who, p)
      if (p.sweepDue(p.now())) {
        // Housekeeping must not fail the upload it rides on; the next interval tries again.
        await sweep(p).then(
          (swept) => req.log.info(swept, "expired uploads and unreferenced files swept"),
          (err: unknown) => req.log.warn({ err }, "sweeping expired uploads failed"),
        )
      }
      // The answer holds presigned URLs: it is sent, never logged.
      return { status: 201, body: answer, headers: SAFE_HEADERS }
    }),
  ],
  [
    "POST",
    "/:id/complete",
    authed<Ports>(async (req, p, who) => ({
      body: await complete(fileId(req), parseInput(completeInput, req.body), who, p),
      headers: SAFE_HEADERS,
    })),
  ],
  [
    "POST",
    "/:id/abort",
    authed<Ports>(async (req, p, who) => {
      await abort(fileId(req), who, p)
      return { status: 204, headers: SAFE_HEADERS }
    }),
  ],
  [
    "GET",
    "/:id",
    authed<Ports>(async (req, p, who) => {
      const answer = await download(fileId(req), who, p)
      if ((req.headers.accept ?? "").includes("application/json"))
        return { body: answer, headers: SAFE_HEADERS }
      return { status: 302, headers: { ...SAFE_HEADERS, location: answer.url } }
    }),
  ],
  [
    "GET",
    "/:id/thumbnail",
    authed<Ports>(async (req, p, who) => {
      const answer = await download(fileId(req), who, p)
      if (answer.thumbnail === undefined) throw new AppError("NOT_FOUND", "This file has no thumbnail.")
      return { status: 302, headers: { ...SAFE_HEADERS, location: answer.thumbnail.url } }
    }),
  ],
]
