"""world_walk.py PORT DESCRIPTOR_SET PLAYER X... - walks PLAYER east across terra-nova over
gRPC (finalverse.world.v1.WorldService/Move on the world engine's port), to each X in turn at
z = 512, 0.4 s apart (within the speed cap), flying 20 m over the ground the last answer gave.
Prints the x of the last answer: the X asked when the world took the move as it was, less
when it cut it short (a newcomer starts at the spawn, x 512)."""
import sys
import time

import grpc

from pb_classes import classes, pool_of

port, desc, player, xs = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4:]
MoveRequest, MoveReply = classes(pool_of(desc), "finalverse.world.v1.MoveRequest",
                                 "finalverse.world.v1.MoveReply")
ch = grpc.insecure_channel("127.0.0.1:" + port)
move = ch.unary_unary("/finalverse.world.v1.WorldService/Move",
                      request_serializer=MoveRequest.SerializeToString,
                      response_deserializer=MoveReply.FromString)
y, x = 0.0, None
for i, want in enumerate(xs):
    if i:
        time.sleep(0.4)
    req = MoveRequest(player_id=player)
    req.position.region = "terra-nova"
    req.position.at.x, req.position.at.y, req.position.at.z = float(want), y + 20, 512.0
    reply = move(req, timeout=10)
    x, y = reply.position.at.x, reply.position.at.y
print("%.3f" % x)
