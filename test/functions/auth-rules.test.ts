/** The auth function's pure rules: usernames, client addresses, delays, hashes, the KEK. */
import { randomBytes } from "node:crypto"
import t from "tap"
import { createPasswordHasher } from "../../functions/auth/passwords"
import { parseKeyEncryptionKey } from "../../functions/auth/signing-keys"
import { clientAddress, throttleRules } from "../../functions/auth/throttle"
import { parseUsername, usernameKey } from "../../functions/auth/usernames"
import { ConfigError } from "../../lib/config"

t.test("username rules", async (t) => {
  for (const ok of [
    "ana",
    "Ana_Lee",
    "a.b-c",
    "张伟明",
    "Ὀδυσσεύς",
    "नमस्ते",
    "user42",
    "x".repeat(32),
    "123",
  ]) {
    t.notOk("problem" in parseUsername(ok), ok)
  }
  for (const bad of ["ab", "x".repeat(33), "a b", "_ana", "ana.", "ana@x", "a\u200db", "", "ana😀", "a/b"]) {
    t.ok("problem" in parseUsername(bad), JSON.stringify(bad))
  }
  t.same(parseUsername("Ａｎａ"), { display: "Ana", key: "ana" }, "fullwidth is normalised for display too")
  t.equal(usernameKey("STRASSE"), usernameKey("straße"))
  t.equal(usernameKey("ΣΊΣΥΦΟΣ"), usernameKey("σίσυφος"))
  t.equal(usernameKey("ﬁle"), usernameKey("FILE"), "the fi ligature")
  t.equal([..."张".repeat(32)].length, 32)
  t.notOk("problem" in parseUsername("张".repeat(32)), "length counts characters, not bytes")
})

t.test("client address: first X-Forwarded-For hop, else X-Real-IP; IPv6 per /64", async (t) => {
  t.equal(clientAddress({ "x-forwarded-for": "203.0.113.9, 10.0.0.1" }), "203.0.113.9")
  t.equal(clientAddress({ "x-real-ip": "198.51.100.2" }), "198.51.100.2")
  t.equal(clientAddress({ "x-forwarded-for": "2001:db8:1:2:3:4:5:6" }), "2001:db8:1:2::/64")
  t.equal(clientAddress({ "x-forwarded-for": "2001:db8::1" }), "2001:db8:0:0::/64")
  t.equal(clientAddress({ "x-forwarded-for": "::ffff:192.0.2.1" }), "192.0.2.1")
  t.equal(clientAddress({ "x-forwarded-for": "not-an-ip" }), undefined)
  t.equal(clientAddress({}), undefined)
})

t.test("delays double after the free attempts, up to the cap", async (t) => {
  const rules = throttleRules({
    accountFree: 2,
    addressFree: 10,
    baseDelayMs: 1000,
    maxDelayMs: 5000,
    windowMs: 1,
  })
  t.same(
    [1, 2, 3, 4, 5, 6, 100].map((n) => rules.blockFor("account", n)),
    [0, 0, 1000, 2000, 4000, 5000, 5000],
  )
  t.equal(rules.blockFor("address", 10), 0)
  t.equal(rules.blockFor("address", 11), 1000)
})

t.test("password hashes carry their parameters and refuse malformed input", async (t) => {
  const hasher = createPasswordHasher({ params: { N: 1024, r: 8, p: 1 }, concurrency: 1, queueMax: 10 })
  const stored = await hasher.hash("ｐａｓｓｗｏｒｄ１")
  t.match(stored, /^scrypt\$1024\$8\$1\$[A-Za-z0-9_-]{22}\$[A-Za-z0-9_-]{43}$/)
  t.ok(await hasher.verify("password1", stored), "passwords are NFKC-normalised before hashing")
  t.notOk(await hasher.verify("password2", stored))
  t.notOk(
    await hasher.verify("password1", "scrypt$1048576000$8$1$AAAA$BBBB"),
    "absurd parameters are refused",
  )
  t.notOk(await hasher.verify("password1", "plain"))
  t.notOk(hasher.outdated(stored))
  t.ok(hasher.outdated(stored.replace("$1024$", "$2048$")))
})

t.test("hashing is bounded: a full queue answers UNAVAILABLE", async (t) => {
  const hasher = createPasswordHasher({ params: { N: 1024, r: 8, p: 1 }, concurrency: 1, queueMax: 2 })
  const results = await Promise.allSettled(Array.from({ length: 6 }, () => hasher.hash("password1")))
  t.equal(results.filter((r) => r.status === "fulfilled").length, 3, "one running plus two waiting")
  t.match(
    results.filter((r) => r.status === "rejected").map((r) => (r as PromiseRejectedResult).reason),
    [{ code: "UNAVAILABLE" }, { code: "UNAVAILABLE" }, { code: "UNAVAILABLE" }],
  )
})

t.test("the key-encryption key must be 32 bytes", async (t) => {
  const raw = randomBytes(32)
  t.same(parseKeyEncryptionKey(raw.toString("hex")).key, raw)
  t.same(parseKeyEncryptionKey(raw.toString("base64")).key, raw)
  t.same(parseKeyEncryptionKey(raw.toString("base64url")).key, raw)
  t.equal(parseKeyEncryptionKey(raw.toString("hex")).id, parseKeyEncryptionKey(raw.toString("base64")).id)
  for (const bad of ["", "secret", randomBytes(16).toString("hex"), randomBytes(31).toString("base64")]) {
    t.throws(() => parseKeyEncryptionKey(bad), ConfigError)
  }
})
