"""pb_classes.py - protobuf message classes made at run time from descriptors (a descriptor set
written by protoc-c --descriptor_set_out, or file descriptors a server sent), with no generated
code: the one loader every Python test client here uses."""
from google.protobuf import descriptor_pb2, descriptor_pool, message_factory


def pool_of(path):
    """A descriptor pool holding every file of the descriptor set at path."""
    with open(path, "rb") as f:
        fds = descriptor_pb2.FileDescriptorSet.FromString(f.read())
    pool = descriptor_pool.DescriptorPool()
    for fd in fds.file:
        pool.Add(fd)
    return pool


def message_class(pool, name):
    """The class of message `name` (full name) in pool, on old and new python3-protobuf."""
    d = pool.FindMessageTypeByName(name)
    if hasattr(message_factory, "GetMessageClass"):
        return message_factory.GetMessageClass(d)
    return message_factory.MessageFactory(pool).GetPrototype(d)


def classes(pool, *names):
    return [message_class(pool, n) for n in names]
