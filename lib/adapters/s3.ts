import {
  CreateBucketCommand,
  HeadBucketCommand,
  PutBucketCorsCommand,
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
  })
}

/** Creates the private bucket when it does not exist yet, and sets its CORS rules for browser uploads. */
export async function ensureBucket(
  client: S3Client,
  bucket: string,
  allowedOrigins: readonly string[],
): Promise<void> {
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
}
