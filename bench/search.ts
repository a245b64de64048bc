/**
 * Search: index throughput and query latency over generated messages (fixed seed, Chinese,
 * English and mixed), the caller a member of 50 conversations, on the embedded PostgreSQL. The
 * baseline, in the same run, is a plain `ILIKE '%q%'` scan of the caller's conversations. A
 * script, not a test: `npx tsx bench/search.ts [messages=1000000] [conversations=2000]`.
 */
import { randomUUID } from "node:crypto"
import { chmod, mkdtemp, rm } from "node:fs/promises"
import { tmpdir } from "node:os"
import { join } from "node:path"
import pg from "pg"
import { handle } from "../functions/index/handler"
import { rebuild } from "../functions/index/rebuild"
import { search } from "../functions/search/handler"
import { freePort } from "../infra/local/ports"
import { startPostgres } from "../infra/local/postgres-server"
import { migrate, readMigrations } from "../infra/migrations/migrate"
import { pgConversationStore } from "../lib/adapters/pg-conversations"
import { pgFileNames, pgSearchIndex, pgSearchSource, pgSearchStore } from "../lib/adapters/pg-search"
import { createLogger } from "../lib/log"
import type { EventBatch } from "../lib/protocol/events"
import { partitionOf } from "../lib/protocol/subjects"
import { tokenize } from "../lib/search/tokenize"

const total = Number(process.argv[2] ?? "1000000")
const conversationCount = Number(process.argv[3] ?? "2000")
const MEMBER_OF = 50
const HANDLER_MESSAGES = Math.min(100_000, total)
const root = join(import.meta.dirname, "..")
const log = createLogger({ name: "bench", level: "warn" })
const out = (line: string) => process.stdout.write(`${line}\n`)

// ---- A fixed-seed corpus ---------------------------------------------------------------------

function mulberry32(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let x = Math.imul(a ^ (a >>> 15), 1 | a)
    x = (x + Math.imul(x ^ (x >>> 7), 61 | x)) ^ x
    return ((x ^ (x >>> 14)) >>> 0) / 4294967296
  }
}
const random = mulberry32(20261127)

/** Picks index i with probability proportional to 1 / (i + 1)^s (word and group sizes are Zipfian). */
function zipf(n: number, s: number): () => number {
  const cumulative: number[] = []
  let sum = 0
  for (let i = 0; i < n; i++) {
    sum += 1 / (i + 1) ** s
    cumulative.push(sum)
  }
  return () => {
    const x = random() * sum
    let lo = 0
    let hi = n - 1
    while (lo < hi) {
      const mid = (lo + hi) >> 1
      if ((cumulative[mid] as number) < x) lo = mid + 1
      else hi = mid
    }
    return lo
  }
}

const ZH = (
  "的 了 我 你 是 在 我们 他们 这个 那个 一下 今天 明天 昨天 周末 上午 下午 晚上 现在 已经 还是 没有 可以 需要 " +
  "应该 知道 觉得 看看 问题 时间 工作 项目 进度 会议 开会 讨论 方案 文档 需求 测试 上线 发布 服务器 数据库 " +
  "接口 客户 用户 产品 设计 代码 提交 合并 分支 版本 修复 报告 计划 预算 合同 财务 审批 流程 通知 安排 " +
  "北京 上海 深圳 广州 杭州 成都 出差 机票 酒店 吃饭 午饭 咖啡 奶茶 下班 加班 请假 生日 快乐 谢谢 好的 " +
  "收到 没问题 辛苦 大家 老板 同事 团队 部门 经理 总监 负责 确认 检查 更新 同步 沟通 反馈 结果 数据 " +
  "分析 增长 季度 目标 完成 延期 风险 优先级 紧急 重要 简单 复杂 性能 优化 部署 监控 告警 日志 故障 " +
  "恢复 备份 安全 权限 账号 密码 登录 手机 电脑 网络 系统 平台 功能 页面 按钮 图片 视频 文件 链接 " +
  "哈尔滨 乌鲁木齐 呼和浩特 量子计算 区块链 人工智能 机器学习 深度学习 自然语言 知识图谱"
).split(" ")
const EN = (
  "the a to and of is in it you that for on this we be are with have not can will at please " +
  "meeting today tomorrow deploy deployment release build test tests review merge branch commit fix bug issue " +
  "server database migration query index cache latency api endpoint client customer user product design " +
  "report plan budget contract team manager schedule call sync update status check done thanks ok sure " +
  "lunch coffee weekend holiday travel flight hotel office remote project roadmap quarter goal metric " +
  "dashboard alert incident outage rollback backup security password login network storage kubernetes " +
  "postgres nats search snippet cursor ranking tokenizer unicode xylophone quasar zeppelin"
).split(" ")
const TECH = "Python API Go Rust JavaScript bug PR CI Docker Kafka iOS Android SQL GPU v2 OK".split(" ")
const zhWord = zipf(ZH.length, 1.05)
const enWord = zipf(EN.length, 1.05)
const techWord = zipf(TECH.length, 1)
const pick = <T>(list: readonly T[], i: number) => list[i] as T

function chinese(words: number): string {
  const parts: string[] = []
  for (let i = 0; i < words; i++) {
    parts.push(pick(ZH, zhWord()))
    if (random() < 0.12) parts.push("，")
  }
  return parts.join("") + pick(["。", "！", "？", "", "~"], Math.floor(random() * 5))
}
function english(words: number): string {
  const parts: string[] = []
  for (let i = 0; i < words; i++) parts.push(pick(EN, enWord()))
  const s = parts.join(" ")
  return `${s[0]?.toUpperCase()}${s.slice(1)}${pick([".", "!", "?", ""], Math.floor(random() * 4))}`
}
function text(): string {
  const r = random()
  const words = 3 + Math.floor(random() * 12)
  let t: string
  if (r < 0.55) t = chinese(words)
  else if (r < 0.85) t = english(words)
  else t = `${chinese(Math.ceil(words / 2))}${pick(TECH, techWord())}${chinese(Math.ceil(words / 2))}`
  return random() < 0.08 ? `${t} ${pick(["👍", "😂", "🎉", "🙏🏽", "❤️"], Math.floor(random() * 5))}` : t
}

// ---- Setup ------------------------------------------------------------------------------------

const dir = await mkdtemp(join(tmpdir(), "cove-bench-search-"))
await chmod(dir, 0o755)
const server = await startPostgres({ port: await freePort(), dataDir: dir, log })
const schema = "bench"
const pool = new pg.Pool({ connectionString: server.url, options: `-c search_path=${schema}`, max: 4 })
try {
  {
    const client = new pg.Client({ connectionString: server.url })
    await client.connect()
    await migrate(client, {
      schema,
      migrations: await readMigrations(join(root, "infra/migrations/sql")),
      log,
    })
    await client.end()
  }
  const caller = randomUUID()
  const sender = Array.from({ length: 200 }, () => randomUUID())
  await pool.query(
    `INSERT INTO users (id, username, username_key, password_hash, created_at)
     SELECT id, 'u' || n, 'u' || n, 'x', now() FROM unnest($1::uuid[]) WITH ORDINALITY AS u(id, n)`,
    [[caller, ...sender]],
  )
  const convs = Array.from({ length: conversationCount }, (_, i) => `conv-${i}`)
  await pool.query(
    `INSERT INTO conversations (id, kind, title, created_by, created_at)
     SELECT id, 'group', id, $2, now() FROM unnest($1::text[]) AS c(id)`,
    [convs, caller],
  )
  // Group sizes are Zipfian; the caller is in every 40th by size, the busiest one included.
  const mine = convs.filter((_, i) => i % Math.floor(conversationCount / MEMBER_OF) === 0).slice(0, MEMBER_OF)
  await pool.query(
    `INSERT INTO conversation_members (conversation_id, user_id, role, joined_at)
     SELECT c, $2, 'member', now() FROM unnest($1::text[]) AS c`,
    [mine, caller],
  )

  const convOf = zipf(conversationCount, 0.9)
  const seqs = new Map<string, number>()
  const start = Date.parse("2025-11-27T00:00:00Z")
  type Row = { conv: string; seq: number; id: string; from: string; text: string; ts: string }
  const generated: Row[] = []
  let generatedChars = 0
  const loadStarted = performance.now()
  for (let i = 0; i < total; i++) {
    const conv = pick(convs, convOf())
    const seq = (seqs.get(conv) ?? 0) + 1
    seqs.set(conv, seq)
    const t = text()
    generatedChars += t.length
    generated.push({
      conv,
      seq,
      id: randomUUID(),
      from: pick(sender, Math.floor(random() * sender.length)),
      text: t,
      ts: new Date(start + i * 30_000).toISOString(),
    })
  }
  for (let i = 0; i < generated.length; i += 5000) {
    const chunk = generated.slice(i, i + 5000)
    await pool.query(
      `INSERT INTO messages (conversation_id, seq, id, sender_id, kind, body, sent_at)
       SELECT c, s, id, f, 'message', jsonb_build_object('kind', 'text', 'text', t), ts
         FROM unnest($1::text[], $2::bigint[], $3::uuid[], $4::text[], $5::text[], $6::timestamptz[])
           AS u(c, s, id, f, t, ts)`,
      [
        chunk.map((r) => r.conv),
        chunk.map((r) => r.seq),
        chunk.map((r) => r.id),
        chunk.map((r) => r.from),
        chunk.map((r) => r.text),
        chunk.map((r) => r.ts),
      ],
    )
  }
  await pool.query(
    "INSERT INTO conversation_heads (conversation_id, last_seq) SELECT * FROM unnest($1::text[], $2::bigint[])",
    [[...seqs.keys()], [...seqs.values()]],
  )
  await pool.query("VACUUM ANALYZE messages")
  const visible = generated.filter((r) => mine.includes(r.conv)).length
  out(
    `corpus: ${total} messages (${Math.round(generatedChars / total)} characters on average; ~55% Chinese, 30% English, 15% mixed) in ${conversationCount} conversations, loaded in ${((performance.now() - loadStarted) / 1000).toFixed(1)} s`,
  )
  out(`caller: member of ${mine.length} conversations holding ${visible} messages`)

  // ---- Indexing -------------------------------------------------------------------------------

  const tokenizeStarted = performance.now()
  for (let i = 0; i < 50_000; i++) tokenize((generated[i] as Row).text)
  out(
    `tokenizer alone: ${Math.round(50_000 / ((performance.now() - tokenizeStarted) / 1000))} msg/s (one core)`,
  )

  const ports = { index: pgSearchIndex(pool), files: pgFileNames(pool) }
  // As deployed (stack.yml: 2 partitions), each partition's worker POSTs its batches in turn.
  const PARTITIONS = 2
  const handlerStarted = performance.now()
  await Promise.all(
    Array.from({ length: PARTITIONS }, async (_, p) => {
      const mineOnly = generated
        .slice(0, HANDLER_MESSAGES)
        .filter((r) => partitionOf(r.conv, PARTITIONS) === p)
      for (let i = 0; i < mineOnly.length; i += 500) {
        const batch: EventBatch = {
          function: "index",
          stream: "COVE_STORED",
          consumer: `index-p${p}`,
          messages: mineOnly.slice(i, i + 500).map((r, j) => ({
            subject: `cove.stored.${p}`,
            seq: i + j + 1,
            delivered: 1,
            headers: {},
            data: {
              type: "message",
              conv: r.conv,
              seq: r.seq,
              id: r.id,
              from: r.from,
              ts: r.ts,
              body: { kind: "text", text: r.text },
            },
          })),
        }
        await handle(batch, ports)
      }
    }),
  )
  const handlerRate = HANDLER_MESSAGES / ((performance.now() - handlerStarted) / 1000)
  out(
    `index function (stored events in batches of 500 as the connector sends them, ${PARTITIONS} partitions as in stack.yml): ${Math.round(handlerRate)} msg/s over ${HANDLER_MESSAGES} messages`,
  )

  const rebuildResult = await rebuild(
    { source: pgSearchSource(pool), ...ports },
    { batchSize: 2000, onProgress: () => undefined },
  )
  const rebuildRate = rebuildResult.done / (rebuildResult.ms / 1000)
  out(
    `rebuild (npm run search:rebuild: read messages, tokenize, upsert; batches of 2,000): ${Math.round(rebuildRate)} msg/s over ${rebuildResult.done} messages (${(rebuildResult.ms / 1000).toFixed(1)} s)`,
  )
  await pool.query("VACUUM ANALYZE search_docs")
  const sizes = await pool.query<{ table: string; index: string }>(
    `SELECT pg_size_pretty(pg_table_size('search_docs')) AS table, pg_size_pretty(pg_relation_size('search_docs_tsv')) AS index`,
  )
  out(`search_docs: table ${sizes.rows[0]?.table}, GIN index ${sizes.rows[0]?.index}`)

  // ---- Queries --------------------------------------------------------------------------------

  const queries = [
    "的",
    "我们",
    "会议",
    "项目进度",
    "服务器",
    "北京",
    "上线 测试",
    "哈尔滨",
    "量子计算",
    "用户登录",
    "the",
    "meeting",
    "deploy",
    "database migration",
    "kubernetes",
    "xylophone",
    "Python",
    "API接口",
    "bug修复",
    "Docker部署",
  ]
  const searchPorts = {
    search: pgSearchStore(pool),
    conversations: pgConversationStore(pool),
    maxQueryChars: 256,
    windowMin: 1_000,
    // The generated messages run up to 2026-11.
    now: () => new Date("2026-11-27T12:00:00Z"),
  }
  const who = { userId: caller, sessionId: "bench" }
  const RUNS = 20
  const percentile = (xs: number[], p: number) => {
    const s = [...xs].sort((a, b) => a - b)
    return s[Math.min(s.length - 1, Math.floor((p / 100) * s.length))] as number
  }
  const timed = async (fn: () => Promise<unknown>, runs: number) => {
    for (let i = 0; i < 2; i++) await fn()
    const ms: number[] = []
    for (let i = 0; i < runs; i++) {
      const t0 = performance.now()
      await fn()
      ms.push(performance.now() - t0)
    }
    return ms
  }
  const all: number[] = []
  const baseline: number[] = []
  out("\nquery                 hits  search p50/p95 ms   ILIKE p50/p95 ms (same query string, newest 20)")
  for (const q of queries) {
    let hits = 0
    const ms = await timed(async () => {
      hits = (await search({ q, limit: 20 }, who, searchPorts)).items.length
    }, RUNS)
    all.push(...ms)
    const like = `%${q.replace(/[\\%_]/g, (c) => `\\${c}`)}%`
    const base = await timed(
      () =>
        pool.query(
          `SELECT conversation_id, seq FROM messages
            WHERE conversation_id = ANY($1::text[]) AND kind = 'message' AND recalled_at IS NULL
              AND body->>'text' ILIKE $2
            ORDER BY sent_at DESC LIMIT 20`,
          [mine, like],
        ),
      5,
    )
    baseline.push(...base)
    const f = (x: number) => x.toFixed(1).padStart(6)
    out(
      `${q.padEnd(20 - [...q].filter((c) => c.charCodeAt(0) > 0x2e80).length)} ${String(hits).padStart(5)}  ${f(percentile(ms, 50))} / ${f(percentile(ms, 95))}     ${f(percentile(base, 50))} / ${f(percentile(base, 95))}`,
    )
  }
  const p50 = percentile(all, 50)
  const p95 = percentile(all, 95)
  const b50 = percentile(baseline, 50)
  const b95 = percentile(baseline, 95)
  out(
    `\nsearch (whole handler: membership, GIN query, ranking, snippets), ${all.length} queries: p50 ${p50.toFixed(1)} ms, p95 ${p95.toFixed(1)} ms`,
  )
  out(
    `ILIKE '%q%' scan of the caller's conversations (baseline), ${baseline.length} queries: p50 ${b50.toFixed(1)} ms, p95 ${b95.toFixed(1)} ms`,
  )
  out(
    `ratio: search p50 is ${(b50 / p50).toFixed(1)}x faster, p95 ${(b95 / p95).toFixed(1)}x faster than the baseline`,
  )
  out(
    `targets: indexing >= 10,000 msg/s: ${Math.min(handlerRate, rebuildRate) >= 10_000 ? "met" : "NOT met"}; query p95 <= 50 ms: ${p95 <= 50 ? "met" : "NOT met"}`,
  )
} finally {
  await pool.end()
  await server.stop()
  await rm(dir, { recursive: true, force: true })
}
