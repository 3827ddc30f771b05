// Health and server reflection (see the header). Messages are protobuf
// DynamicMessages over the descriptors of Debian's grpc-proto files, so
// field names and numbers are the published protos', checked when the
// server starts.
#include "transport/grpc_services.h"

#include <google/protobuf/descriptor.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/descriptor_database.h>
#include <google/protobuf/dynamic_message.h>

#include <algorithm>
#include <array>
#include <set>

#include "transport/grpc_services_descriptor.h"

namespace dispatch::transport {
namespace {

namespace pb = google::protobuf;

constexpr std::string_view kHealthCheck = "/grpc.health.v1.Health/Check";
constexpr std::string_view kHealthWatch = "/grpc.health.v1.Health/Watch";
constexpr std::string_view kReflectionV1 = "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo";
constexpr std::string_view kReflectionV1alpha = "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo";

const std::array<GrpcServices::Method, 4> kMethods = {{
    {kHealthCheck, GrpcServices::Kind::unary, 0},
    {kHealthWatch, GrpcServices::Kind::watch, 1},
    {kReflectionV1, GrpcServices::Kind::each_message, 2},
    {kReflectionV1alpha, GrpcServices::Kind::each_message, 3},
}};

// grpc.health.v1.HealthCheckResponse.ServingStatus
enum ServingStatus { kServing = 1, kNotServing = 2, kServiceUnknown = 3 };

// HealthCheckRequest {string service = 1}, read by hand: one field.
Result<std::string> read_service_name(std::string_view message, const pb::Descriptor* type,
                                      pb::MessageFactory& factory) {
  std::unique_ptr<pb::Message> request(factory.GetPrototype(type)->New());
  if (!request->ParseFromArray(message.data(), static_cast<int>(message.size()))) {
    return Error(Code::invalid_argument, "the request is not a grpc.health.v1.HealthCheckRequest");
  }
  return request->GetReflection()->GetString(*request, type->FindFieldByName("service"));
}

}  // namespace

struct GrpcServices::Reflection {
  // The health and reflection protos, from the build's descriptor set.
  pb::DescriptorPool own;
  pb::DynamicMessageFactory factory{&own};
  // What reflection serves: the table's files, ours, and their
  // well-known-type dependencies.
  pb::SimpleDescriptorDatabase served_files;
  std::set<std::string> added;  // names of the files in served_files
  std::unique_ptr<pb::DescriptorPool> served;
  std::vector<std::string> problems;

  void add_file(const pb::FileDescriptorProto& file) {
    // Added already: services of one .proto share their file (and
    // SimpleDescriptorDatabase copies what it finds, so it cannot be asked
    // without somewhere to copy to).
    if (!added.insert(file.name()).second) return;
    if (!served_files.Add(file)) return;
    // Dependencies that are not ours: protobuf's well-known types.
    for (const std::string& dep : file.dependency()) {
      pb::FileDescriptorProto found;
      if (served_files.FindFileByName(dep, &found)) continue;
      if (const pb::FileDescriptor* wkt = pb::DescriptorPool::generated_pool()->FindFileByName(dep)) {
        pb::FileDescriptorProto copy;
        wkt->CopyTo(&copy);
        add_file(copy);
      }
    }
  }
};

GrpcServices::GrpcServices(const DispatchTable& table, const Logger& logger)
    : reflection_(std::make_unique<Reflection>()) {
  Reflection& r = *reflection_;
  pb::FileDescriptorSet set;
  if (!set.ParseFromArray(detail::kGrpcServicesDescriptorSet, static_cast<int>(detail::kGrpcServicesDescriptorSetSize))) {
    r.problems.push_back("the embedded health/reflection descriptor set does not parse");
  }
  for (const pb::FileDescriptorProto& file : set.file()) {
    if (r.own.BuildFile(file) == nullptr) r.problems.push_back("cannot build " + file.name());
    r.add_file(file);
  }
  for (const Service* service : table.services()) {
    service_names_.push_back(service->package[0] ? std::string(service->package) + "." + service->name
                                                 : std::string(service->name));
    pb::FileDescriptorProto file;
    if (service->file_descriptor.empty() ||
        !file.ParseFromArray(service->file_descriptor.data(), static_cast<int>(service->file_descriptor.size()))) {
      r.problems.push_back(service_names_.back() + " embeds no descriptor reflection can read");
      continue;
    }
    r.add_file(file);
  }
  service_names_.push_back("grpc.health.v1.Health");
  service_names_.push_back("grpc.reflection.v1.ServerReflection");
  service_names_.push_back("grpc.reflection.v1alpha.ServerReflection");
  r.served = std::make_unique<pb::DescriptorPool>(&r.served_files);
  for (const std::string& p : r.problems) logger.log(LogLevel::warn, "gRPC reflection: " + p);
}

GrpcServices::~GrpcServices() = default;

const GrpcServices::Method* GrpcServices::find(std::string_view path) const noexcept {
  for (const Method& m : kMethods) {
    if (m.path == path) return &m;
  }
  return nullptr;
}

std::string GrpcServices::health_message() const {
  const pb::Descriptor* type = reflection_->own.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse");
  if (type == nullptr) return std::string();
  std::unique_ptr<pb::Message> response(reflection_->factory.GetPrototype(type)->New());
  response->GetReflection()->SetEnumValue(response.get(), type->FindFieldByName("status"),
                                          serving_.load() ? kServing : kNotServing);
  return response->SerializeAsString();
}

Result<std::string> GrpcServices::check(std::string_view message, bool watch) const {
  Reflection& r = *reflection_;
  const pb::Descriptor* request_type = r.own.FindMessageTypeByName("grpc.health.v1.HealthCheckRequest");
  const pb::Descriptor* response_type = r.own.FindMessageTypeByName("grpc.health.v1.HealthCheckResponse");
  if (request_type == nullptr || response_type == nullptr) {
    return Error(Code::unimplemented, "health checking is not available: its descriptors did not load");
  }
  auto service = read_service_name(message, request_type, r.factory);
  if (!service.ok()) return std::move(service).error();
  int status = serving_.load() ? kServing : kNotServing;
  if (!service->empty() && std::find(service_names_.begin(), service_names_.end(), *service) == service_names_.end()) {
    if (!watch) return Error(Code::not_found, "no service named '" + service->substr(0, 200) + "' is served here");
    status = kServiceUnknown;
  }
  std::unique_ptr<pb::Message> response(r.factory.GetPrototype(response_type)->New());
  response->GetReflection()->SetEnumValue(response.get(), response_type->FindFieldByName("status"), status);
  return response->SerializeAsString();
}

Result<std::string> GrpcServices::answer(const Method& method, std::string_view message) const {
  if (method.index == 0) return check(message, false);
  if (method.index == 1) return check(message, true);
  Reflection& r = *reflection_;
  const std::string package = method.index == 2 ? "grpc.reflection.v1." : "grpc.reflection.v1alpha.";
  const pb::Descriptor* request_type = r.own.FindMessageTypeByName(package + "ServerReflectionRequest");
  const pb::Descriptor* response_type = r.own.FindMessageTypeByName(package + "ServerReflectionResponse");
  if (request_type == nullptr || response_type == nullptr) {
    return Error(Code::unimplemented, "server reflection is not available: its descriptors did not load");
  }
  std::unique_ptr<pb::Message> request(r.factory.GetPrototype(request_type)->New());
  if (!request->ParseFromArray(message.data(), static_cast<int>(message.size()))) {
    return Error(Code::invalid_argument, "the request is not a " + package + "ServerReflectionRequest");
  }
  const pb::Reflection& in = *request->GetReflection();
  auto field = [](const pb::Descriptor* d, const char* name) { return d->FindFieldByName(name); };

  std::unique_ptr<pb::Message> response(r.factory.GetPrototype(response_type)->New());
  const pb::Reflection& out = *response->GetReflection();
  out.SetString(response.get(), field(response_type, "valid_host"), in.GetString(*request, field(request_type, "host")));
  out.MutableMessage(response.get(), field(response_type, "original_request"))->CopyFrom(*request);

  auto error = [&](Code code, const std::string& text) {
    pb::Message* e = out.MutableMessage(response.get(), field(response_type, "error_response"));
    const pb::Descriptor* d = e->GetDescriptor();
    e->GetReflection()->SetInt32(e, field(d, "error_code"), static_cast<int>(code));
    e->GetReflection()->SetString(e, field(d, "error_message"), text);
  };
  // A file and every file it depends on, each once, the file first.
  auto send_files = [&](const pb::FileDescriptor* file) {
    pb::Message* files = out.MutableMessage(response.get(), field(response_type, "file_descriptor_response"));
    const pb::FieldDescriptor* list = field(files->GetDescriptor(), "file_descriptor_proto");
    std::set<std::string> sent;
    std::vector<const pb::FileDescriptor*> todo{file};
    while (!todo.empty()) {
      const pb::FileDescriptor* f = todo.back();
      todo.pop_back();
      if (!sent.insert(f->name()).second) continue;
      pb::FileDescriptorProto proto;
      f->CopyTo(&proto);
      files->GetReflection()->AddString(files, list, proto.SerializeAsString());
      for (int i = f->dependency_count() - 1; i >= 0; --i) todo.push_back(f->dependency(i));
    }
  };

  const pb::OneofDescriptor* which = request_type->FindOneofByName("message_request");
  const pb::FieldDescriptor* asked = which ? in.GetOneofFieldDescriptor(*request, which) : nullptr;
  const std::string name = asked ? asked->name() : std::string();
  if (name == "list_services") {
    pb::Message* list = out.MutableMessage(response.get(), field(response_type, "list_services_response"));
    const pb::FieldDescriptor* services = field(list->GetDescriptor(), "service");
    for (const std::string& s : service_names_) {
      pb::Message* entry = list->GetReflection()->AddMessage(list, services);
      entry->GetReflection()->SetString(entry, field(entry->GetDescriptor(), "name"), s);
    }
  } else if (name == "file_by_filename") {
    const std::string file = in.GetString(*request, asked);
    if (const pb::FileDescriptor* f = r.served->FindFileByName(file)) {
      send_files(f);
    } else {
      error(Code::not_found, "no file named '" + file.substr(0, 200) + "' is known here");
    }
  } else if (name == "file_containing_symbol") {
    const std::string symbol = in.GetString(*request, asked);
    if (const pb::FileDescriptor* f = r.served->FindFileContainingSymbol(symbol)) {
      send_files(f);
    } else {
      error(Code::not_found, "no symbol named '" + symbol.substr(0, 200) + "' is known here");
    }
  } else if (name == "file_containing_extension") {
    const pb::Message& ext = in.GetMessage(*request, asked);
    const pb::Descriptor* d = ext.GetDescriptor();
    const std::string type = ext.GetReflection()->GetString(ext, field(d, "containing_type"));
    const int number = ext.GetReflection()->GetInt32(ext, field(d, "extension_number"));
    const pb::Descriptor* base = r.served->FindMessageTypeByName(type);
    const pb::FieldDescriptor* extension = base ? r.served->FindExtensionByNumber(base, number) : nullptr;
    if (extension != nullptr) {
      send_files(extension->file());
    } else {
      error(Code::not_found, "no extension " + std::to_string(number) + " of '" + type.substr(0, 200) + "'");
    }
  } else if (name == "all_extension_numbers_of_type") {
    const std::string type = in.GetString(*request, asked);
    if (const pb::Descriptor* base = r.served->FindMessageTypeByName(type)) {
      pb::Message* numbers = out.MutableMessage(response.get(), field(response_type, "all_extension_numbers_response"));
      const pb::Descriptor* d = numbers->GetDescriptor();
      numbers->GetReflection()->SetString(numbers, field(d, "base_type_name"), type);
      std::vector<const pb::FieldDescriptor*> extensions;
      r.served->FindAllExtensions(base, &extensions);
      for (const pb::FieldDescriptor* e : extensions) {
        numbers->GetReflection()->AddInt32(numbers, field(d, "extension_number"), e->number());
      }
    } else {
      error(Code::not_found, "no message type named '" + type.substr(0, 200) + "' is known here");
    }
  } else {
    error(Code::invalid_argument, "the ServerReflectionRequest asks for nothing this server knows");
  }
  return response->SerializeAsString();
}

}  // namespace dispatch::transport
