/**
 * Undecodable request bodies are the caller's fault, not the server's (#11 §6). grpc-js answers a
 * message its deserializer cannot parse with INTERNAL ("Error deserializing request"), which tells
 * an operator's alerting that the coordinator is broken when a client sent garbage. Here every
 * request deserializer is wrapped so that it never throws: a message protobuf cannot decode
 * becomes a marker value, and the handler answers it INVALID_ARGUMENT naming the method, or
 * UNAUTHENTICATED first when the server requires signed requests and the call proves nothing
 * (server.ts). INTERNAL stays for our own bugs.
 */
import type * as grpc from '@grpc/grpc-js';

const UNDECODABLE = Symbol('fedlora.undecodableRequest');

/** What a wrapped deserializer returns for bytes that are not a valid request message. */
export interface UndecodableRequest {
  readonly [UNDECODABLE]: string;
}

/** The reason `request` could not be decoded, or undefined for a decoded message. */
export function undecodableReason(request: unknown): string | undefined {
  return typeof request === 'object' && request !== null ? (request as Partial<UndecodableRequest>)[UNDECODABLE] : undefined;
}

/**
 * Returns `def` with request deserializers that never throw: bytes protobuf cannot decode give an
 * UndecodableRequest saying which message was expected and why decoding failed (protobuf's
 * messages name offsets and wire types, never anything of ours).
 */
export function withDecodeGuard(def: grpc.ServiceDefinition): grpc.ServiceDefinition {
  const out: Record<string, grpc.MethodDefinition<unknown, unknown>> = {};
  for (const [name, m] of Object.entries(def)) {
    const expected = (m as { requestType?: { type?: { name?: string } } }).requestType?.type?.name ?? `${name} request`;
    out[name] = {
      ...m,
      requestDeserialize: (bytes: Buffer) => {
        try {
          return m.requestDeserialize(bytes) as unknown;
        } catch (err) {
          const why = err instanceof Error ? err.message.slice(0, 200) : 'unknown decoding error';
          const reason = `${name}: the request body (${bytes.length} bytes) is not a valid fedlora.v1.${expected} message (${why}); send a message encoded from protos/fedlora/v1/federation.proto`;
          return { [UNDECODABLE]: reason } satisfies UndecodableRequest;
        }
      },
    };
  }
  return out as grpc.ServiceDefinition;
}
