/* pb_json.h - any protobuf-c message as JSON, from its descriptor: what the WebSocket gateway
 * sends clients for a bus event, and what tools print. Field names as in the .proto file
 * (snake_case); enums as the value's name without the enum's prefix, lowercased
 * (MELODY_TYPE_RESTORATION -> "restoration"); bytes in base64; 64-bit integers past 2^53 as
 * strings (JavaScript numbers lose them otherwise); proto3 scalars always, also at zero. */
#ifndef FV_RPC_PB_JSON_H
#define FV_RPC_PB_JSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>

/* A new JSON object for m (a reference the caller owns), or NULL when out of memory. */
json_t *fv_pb_to_json(const ProtobufCMessage *m);

/* The descriptor of an event type of proto/events.proto ("song.performed" -> SongPerformed),
 * or NULL for a type that is not in the contract. */
const ProtobufCMessageDescriptor *fv_event_descriptor(const char *type, size_t len);

#endif
