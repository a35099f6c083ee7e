import { z } from "zod";

/** admission.k8s.io/v1 AdmissionReview, the parts an eviction webhook reads. */
export const AdmissionReviewSchema = z.object({
  apiVersion: z.string(),
  kind: z.literal("AdmissionReview"),
  request: z.object({
    uid: z.string(),
    name: z.string().optional(),
    namespace: z.string().optional(),
    operation: z.string(),
    subResource: z.string().optional(),
    resource: z.object({
      group: z.string().optional(),
      version: z.string().optional(),
      resource: z.string(),
    }),
  }),
});
export type AdmissionReview = z.infer<typeof AdmissionReviewSchema>;

export interface AdmissionAnswer {
  allowed: boolean;
  code?: number;
  message: string;
}

export function admissionResponse(apiVersion: string, uid: string, a: AdmissionAnswer) {
  const response: Record<string, unknown> = { uid, allowed: a.allowed };
  if (!a.allowed) {
    response.status = {
      code: a.code ?? 403,
      reason: a.code === 429 ? "TooManyRequests" : "Forbidden",
      message: a.message,
    };
  }
  return { apiVersion, kind: "AdmissionReview", response };
}
