/** Small readers for HTTP answers in tests. */

export type ErrorAnswer = {
  status: number
  code: string
  message: string
  request_id?: string
  details?: unknown
}

export async function errorOf(res: Response): Promise<ErrorAnswer> {
  const body = (await res.json()) as { error?: Omit<ErrorAnswer, "status"> }
  if (body.error === undefined) throw new Error(`expected an error body, got ${JSON.stringify(body)}`)
  return { status: res.status, ...body.error }
}

// biome-ignore lint/suspicious/noExplicitAny: tests read arbitrary JSON answers and assert on them with tap.
export type Json = any

export async function jsonOf(res: Response): Promise<Json> {
  return res.json()
}
