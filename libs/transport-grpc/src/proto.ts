import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { FEDERATION_PROTO, PROTO_ROOT } from '@fedlora/protos';

/**
 * proto-loader options used on both sides: camelCase field names, uint64 as JS numbers (offsets
 * and timestamps stay far below 2^53), enums as their names, defaults filled in, oneof names set.
 */
export const PROTO_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [PROTO_ROOT],
};

let cached: grpc.GrpcObject | undefined;

/** The loaded `fedlora.v1` package (service constructors and message types). */
export function loadFederationPackage(): grpc.GrpcObject {
  if (!cached) {
    const def = protoLoader.loadSync(FEDERATION_PROTO, PROTO_LOADER_OPTIONS);
    cached = (grpc.loadPackageDefinition(def).fedlora as grpc.GrpcObject).v1 as grpc.GrpcObject;
  }
  return cached;
}

/** The Federation service definition (for server.addService). */
export function federationService(): grpc.ServiceDefinition {
  return (loadFederationPackage().Federation as grpc.ServiceClientConstructor).service;
}

/** Constructor of the generated Federation client. */
export function federationClientCtor(): grpc.ServiceClientConstructor {
  return loadFederationPackage().Federation as grpc.ServiceClientConstructor;
}
