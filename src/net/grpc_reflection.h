/* grpc_reflection.h - server reflection, grpc.reflection.v1alpha.ServerReflection/
 * ServerReflectionInfo (bidirectional), so that tools can list a port's services and fetch
 * their .proto definitions without the files: list_services (what the gRPC server serves),
 * file_by_filename and file_containing_symbol (the serialized FileDescriptorProto of the file
 * and of everything it imports, from the descriptor set built in at compile time: proto/ and
 * the standard protos we serve), all_extension_numbers_of_type (none: our protos declare no
 * extensions), file_containing_extension (NOT_FOUND). A name that is not known is answered
 * with an ErrorResponse NOT_FOUND, a request that does not decode ends the call
 * INVALID_ARGUMENT. */
#ifndef FV_NET_GRPC_REFLECTION_H
#define FV_NET_GRPC_REFLECTION_H

#include "core/err.h"
#include "net/grpc_server.h"

/* Adds the reflection service to g (after its other services, which it lists). 0, FV_EEXIST,
 * FV_EINVAL (the built-in descriptor set does not parse). */
FV_MUST_USE int fv_grpc_reflection_serve(fv_grpc_server_t *g);

#endif
