// grpc_echo_server.cc - the reference for bench/grpc.sh: Debian's C++ gRPC server (libgrpc++)
// answering every unary call with the request's own message, through the callback generic
// service (no code generation; the bytes come back as they came). Usage: grpc_echo_server PORT
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace {

class EchoReactor : public grpc::ServerGenericBidiReactor {
  public:
    EchoReactor() { StartRead(&msg_); }
    void OnReadDone(bool ok) override
    {
        if (!ok) {
            Finish(grpc::Status(grpc::StatusCode::INTERNAL, "no request message"));
            return;
        }
        StartWriteAndFinish(&msg_, grpc::WriteOptions(), grpc::Status::OK);
    }
    void OnDone() override { delete this; }

  private:
    grpc::ByteBuffer msg_;
};

class EchoService : public grpc::CallbackGenericService {
    grpc::ServerGenericBidiReactor *CreateReactor(grpc::GenericCallbackServerContext *) override
    {
        return new EchoReactor();
    }
};

}  // namespace

int main(int argc, char **argv)
{
    if (argc != 2)
        return 2;
    EchoService svc;
    grpc::ServerBuilder b;
    b.AddListeningPort(std::string("127.0.0.1:") + argv[1], grpc::InsecureServerCredentials());
    b.RegisterCallbackGenericService(&svc);
    std::unique_ptr<grpc::Server> server = b.BuildAndStart();
    if (!server)
        return 1;
    server->Wait();
    return 0;
}
