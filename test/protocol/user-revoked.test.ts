/** The revocation subject and event shared by the auth function and the edges. */
import fc from "fast-check"
import t from "tap"
import { subjects, USER_REVOKED_SUBJECTS } from "../../lib/protocol/subjects"
import { userRevokedEvent } from "../../lib/protocol/tokens"

t.test("userRevoked never emits a wildcard, an empty token or a space, whatever the input", async (t) => {
  fc.assert(
    fc.property(fc.oneof(fc.string(), fc.uuid(), fc.stringMatching(/^[A-Za-z0-9_.*> -]{0,70}$/)), (id) => {
      let subject: string
      try {
        subject = subjects.userRevoked(id)
      } catch {
        // Refusing an unsafe id is the expected outcome for most random strings.
        return true
      }
      const tokens = subject.split(".")
      return (
        tokens.length === 4 &&
        tokens.every((tok) => tok !== "" && !/[*>\s]/.test(tok)) &&
        tokens[0] === "cove" &&
        tokens[1] === "user" &&
        tokens[2] === id &&
        tokens[3] === "revoked"
      )
    }),
  )
  t.equal(subjects.userRevoked("u-1"), "cove.user.u-1.revoked")
  t.equal(USER_REVOKED_SUBJECTS, "cove.user.*.revoked")
})

t.test("the revoked event round-trips through JSON and refuses unknown reasons", async (t) => {
  const event = {
    type: "revoked",
    user: "0b9f4c1e-8d2a-4c57-9a1e-2f3b4c5d6e7f",
    reason: "logout",
    sid: "s-1",
  }
  t.same(userRevokedEvent.parse(JSON.parse(JSON.stringify(event))), event)
  t.notOk(userRevokedEvent.safeParse({ ...event, reason: "bored" }).success)
  t.notOk(userRevokedEvent.safeParse({ ...event, user: "a.b" }).success, "user ids are subject-safe")
})
