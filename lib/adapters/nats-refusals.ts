import type { NatsConnection } from "nats"
import type { RefusalCode, RefusalNotices } from "../ports"
import type { RefusedNotice } from "../protocol/events"
import { subjects } from "../protocol/subjects"

const encoder = new TextEncoder()

const EXPLANATIONS: Readonly<Record<RefusalCode, string>> = {
  NOT_A_MEMBER: "You are not a member of this conversation any more.",
  TARGET_NOT_FOUND: "The message this event points at does not exist in this conversation.",
  TARGET_RECALLED: "The message was recalled.",
  FORBIDDEN: "Only the sender or a group admin may do this.",
  ID_TAKEN: "This id is already used in the conversation; send with a new id.",
  FILE_NOT_READY: "The file is not uploaded completely.",
  FILE_NOT_SENDERS: "The file was uploaded by someone else.",
  FILE_OTHER_CONVERSATION: "The file belongs to another conversation.",
}

/** One core NATS message per refused event, on its sender's subject; reads have no id and are skipped. */
export function natsRefusalNotices(nc: NatsConnection): RefusalNotices {
  return {
    async tell(refused) {
      let published = 0
      for (const { event, code } of refused) {
        if (event.type === "read") continue
        const notice: RefusedNotice = {
          type: "refused",
          id: event.id,
          conv: event.conv,
          code,
          message: EXPLANATIONS[code],
        }
        nc.publish(subjects.userRefused(event.from), encoder.encode(JSON.stringify(notice)))
        published++
      }
      if (published > 0) await nc.flush()
    },
  }
}
