import {
  CreateBucketCommand,
  HeadBucketCommand,
  PutBucketCorsCommand,
  PutBucketEncryptionCommand,
  PutBucketLifecycleConfigurationCommand,
  S3Client,
  S3ServiceException,
} from "@aws-sdk/client-s3"

export type S3Settings = {
  readonly endpoint: string | undefined
  readonly region: string
  readonly accessKeyId: string
  readonly secretAccessKey: string
  /** Path-style addressing works with every self-hosted store (MinIO, Ceph RGW, SeaweedFS). */
  readonly forcePathStyle: boolean
}

export function createS3Client(settings: S3Settings): S3Client {
  return new S3Client({
    region: settings.region,
    ...(settings.endpoint === undefined ? {} : { endpoint: settings.endpoint }),
    forcePathStyle: settings.forcePathStyle,
    credentials: { accessKeyId: settings.accessKeyId, secretAccessKey: settings.secretAccessKey },
    // Flexible checksums (CRC32 trailers) are not understood by every self-hosted store (Ceph 16,
    // s3rver); Cove verifies uploads itself (functions/files complete).
    requestChecksumCalculation: "WHEN_REQUIRED",
    responseChecksumValidation: "WHEN_REQUIRED",
  })
}

export type BucketSetup = {
  /** Multipart uploads never completed are dropped by the store after this many days. */
  readonly abortIncompleteMultipartDays: number
  /** Ask for server-side encryption (SSE-S3, AES256) as the bucket default. */
  readonly encryption: boolean
}

/** What the store accepted; a store without encryption or lifecycle support still serves. */
export type BucketState = {
  readonly encryption: "AES256" | "unsupported" | "off"
  readonly lifecycle: "set" | "unsupported"
}

const DEFAULT_SETUP: BucketSetup = { abortIncompleteMultipartDays: 1, encryption: true }

/** A store's answer that it does not implement a bucket sub-resource (not a failure of ours). */
function isUnsupported(err: unknown): boolean {
  if (!(err instanceof S3ServiceException)) return false
  const status = err.$metadata.httpStatusCode
  return (
    status === 501 ||
    status === 405 ||
    ["NotImplemented", "MalformedXML", "InvalidRequest", "UnsupportedOperation"].includes(err.name)
  )
}

/**
 * Creates the private bucket when it does not exist yet (no public-read ACL, ever), sets its
 * CORS rules for browser uploads, its lifecycle (incomplete multipart uploads are aborted) and
 * default server-side encryption where the store supports it.
 */
export async function ensureBucket(
  client: S3Client,
  bucket: string,
  allowedOrigins: readonly string[],
  setup: BucketSetup = DEFAULT_SETUP,
): Promise<BucketState> {
  try {
    await client.send(new HeadBucketCommand({ Bucket: bucket }))
  } catch (err) {
    if (!(err instanceof S3ServiceException) || err.$metadata.httpStatusCode !== 404) throw err
    // Absent: create it. A concurrent creator winning the race is fine.
    await client.send(new CreateBucketCommand({ Bucket: bucket })).catch((createErr: unknown) => {
      if (createErr instanceof S3ServiceException && createErr.name === "BucketAlreadyOwnedByYou") return
      throw createErr
    })
  }
  if (allowedOrigins.length > 0) {
    await client.send(
      new PutBucketCorsCommand({
        Bucket: bucket,
        CORSConfiguration: {
          CORSRules: [
            {
              AllowedOrigins: [...allowedOrigins],
              AllowedMethods: ["GET", "PUT", "POST", "HEAD"],
              AllowedHeaders: ["*"],
              ExposeHeaders: ["ETag"],
              MaxAgeSeconds: 3600,
            },
          ],
        },
      }),
    )
  }
  const lifecycle = await client
    .send(
      new PutBucketLifecycleConfigurationCommand({
        Bucket: bucket,
        LifecycleConfiguration: {
          Rules: [
            {
              ID: "cove-abort-incomplete-multipart",
              Status: "Enabled",
              Filter: { Prefix: "" },
              AbortIncompleteMultipartUpload: { DaysAfterInitiation: setup.abortIncompleteMultipartDays },
            },
          ],
        },
      }),
    )
    .then(
      () => "set" as const,
      (err: unknown) => {
        // The files function also sweeps what was never completed (docs/files.md).
        if (isUnsupported(err)) return "unsupported" as const
        throw err
      },
    )
  if (!setup.encryption) return { encryption: "off", lifecycle }
  const encryption = await client
    .send(
      new PutBucketEncryptionCommand({
        Bucket: bucket,
        ServerSideEncryptionConfiguration: {
          Rules: [{ ApplyServerSideEncryptionByDefault: { SSEAlgorithm: "AES256" } }],
        },
      }),
    )
    .then(
      () => "AES256" as const,
      (err: unknown) => {
        // Stores without SSE (s3rver; Ceph RGW without a key backend answers InvalidArgument)
        // still serve; the caller logs the downgrade.
        if (isUnsupported(err) || (err instanceof S3ServiceException && err.name === "InvalidArgument"))
          return "unsupported" as const
        throw err
      },
    )
  return { encryption, lifecycle }
}
