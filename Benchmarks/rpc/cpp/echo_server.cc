// C++ baseline for Benchmarks/rpc: ctower.testing.v1.Echo/Say against Debian's libgrpc++ 1.51.
//
//   echo_server PORT [callback|async]
//
// callback (default): the callback API with the library's default reactor.
// async: the completion-queue API, one completion queue drained by the main thread.
// The benchmark pins the whole process to one core with `taskset -c 0`; gRPC's own helper
// threads (timer, executor) share that core, so the comparison is one core against one core.
// Prints "listening on PORT" on stdout once the port is bound.
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "ctower/testing/v1/echo.grpc.pb.h"

using ctower::testing::v1::Echo;
using ctower::testing::v1::EchoRequest;
using ctower::testing::v1::EchoResponse;

namespace {

class CallbackEcho final : public Echo::CallbackService {
  grpc::ServerUnaryReactor* Say(grpc::CallbackServerContext* context, const EchoRequest* request,
                                EchoResponse* response) override {
    response->set_text(request->text());
    grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
};

// One in-flight Say call on the async API: waits for a request, answers it, frees itself.
class AsyncCall {
 public:
  AsyncCall(Echo::AsyncService* service, grpc::ServerCompletionQueue* queue)
      : service_(service), queue_(queue), responder_(&context_) {
    service_->RequestSay(&context_, &request_, &responder_, queue_, queue_, this);
  }

  // Called for each completion of this call's tag: first "request arrived" (ok=false when the
  // queue shuts down before a request came), then "Finish done".
  void Proceed(bool ok) {
    if (answered_ || !ok) {
      delete this;
      return;
    }
    new AsyncCall(service_, queue_);  // keep the number of armed requests constant
    response_.set_text(request_.text());
    answered_ = true;
    responder_.Finish(response_, grpc::Status::OK, this);
  }

 private:
  Echo::AsyncService* service_;
  grpc::ServerCompletionQueue* queue_;
  grpc::ServerContext context_;
  EchoRequest request_;
  EchoResponse response_;
  grpc::ServerAsyncResponseWriter<EchoResponse> responder_;
  bool answered_ = false;
};

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s PORT [callback|async]\n", argv[0]);
    return 2;
  }
  const std::string port = argv[1];
  const std::string mode = argc > 2 ? argv[2] : "callback";
  const std::string address = "127.0.0.1:" + port;

  grpc::ServerBuilder builder;
  int bound_port = 0;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &bound_port);

  if (mode == "callback") {
    CallbackEcho service;
    builder.RegisterService(&service);
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (!server || bound_port == 0) {
      std::fprintf(stderr, "could not listen on %s\n", address.c_str());
      return 1;
    }
    std::printf("listening on %d\n", bound_port);
    std::fflush(stdout);
    server->Wait();
    return 0;
  }
  if (mode == "async") {
    Echo::AsyncService service;
    builder.RegisterService(&service);
    std::unique_ptr<grpc::ServerCompletionQueue> queue = builder.AddCompletionQueue();
    std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
    if (!server || bound_port == 0) {
      std::fprintf(stderr, "could not listen on %s\n", address.c_str());
      return 1;
    }
    std::printf("listening on %d\n", bound_port);
    std::fflush(stdout);
    // Several armed requests so a burst of streams does not wait for re-arming.
    for (int i = 0; i < 64; ++i) new AsyncCall(&service, queue.get());
    void* tag = nullptr;
    bool ok = false;
    while (queue->Next(&tag, &ok)) static_cast<AsyncCall*>(tag)->Proceed(ok);
    return 0;
  }
  std::fprintf(stderr, "unknown mode %s (callback|async)\n", mode.c_str());
  return 2;
}
