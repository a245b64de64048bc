/**
 * The payload of a delivery subject (`subjects.delivery`): one frame, or several separated by a
 * newline. Frames are JSON text, which never holds a raw newline, so an edge splits a payload
 * without decoding it and hands each frame to its sockets as it came.
 */
export const FRAME_SEPARATOR = 0x0a

/** The frames of a delivery payload, as views of it (no copy). */
export function splitFrames(payload: Uint8Array): Uint8Array[] {
  let end = payload.indexOf(FRAME_SEPARATOR)
  if (end === -1) return payload.byteLength === 0 ? [] : [payload]
  const frames: Uint8Array[] = []
  let start = 0
  while (end !== -1) {
    if (end > start) frames.push(payload.subarray(start, end))
    start = end + 1
    end = payload.indexOf(FRAME_SEPARATOR, start)
  }
  if (start < payload.byteLength) frames.push(payload.subarray(start))
  return frames
}
