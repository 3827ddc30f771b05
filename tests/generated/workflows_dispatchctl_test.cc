// dispatchctl with the .proto dispatch-gen emitted for workflows/api.h (and
// a descriptor set protoc made from it), against dispatchd and the
// generated server as processes over loopback: a workflow dispatched with
// --input-json, its status, list, tree and history showing inputs and
// outputs as JSON (text and --json, raw bytes kept), its child workflow
// expanded in its history, and each kind of bad input refused with exit
// status 2 before anything is dispatched.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <array>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "child_process.h"
#include "workflows_processes.h"
#include "dispatch/security/keys.h"

namespace {

using namespace std::chrono_literals;

using durable_test::Output;
using durable_test::run;

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  for (std::size_t at = 0; at < text.size();) {
    const std::size_t end = text.find('\n', at);
    lines.push_back(text.substr(at, end - at));
    at = end == std::string::npos ? text.size() : end + 1;
  }
  return lines;
}

class DispatchctlJson : public workflows_test::Processes {
 protected:
  DispatchctlJson() : Processes("dispatchctl_json") {}
  // dispatchctl without message types (and none from the environment).
  std::string bare(const std::string& args) {
    return "env -u DISPATCH_PROTO -u DISPATCH_PROTO_PATH -u DISPATCH_DESCRIPTOR_SET " + std::string(DISPATCHCTL) +
           " --url " + api_url_ + " --api-key k1 " + args;
  }
  // dispatchctl given the emitted .proto.
  std::string ctl(const std::string& args) { return bare("--proto " + std::string(WORKFLOWS_PROTO) + " " + args); }
  // How many calls the scheduler has.
  std::size_t calls() {
    Output list = run(bare("list --limit 1000"));
    EXPECT_EQ(list.status, 0) << list.out;
    return lines_of(list.out).size() - 1;  // less the header
  }
  // Dispatches checkout for o1 with its input as JSON and waits for it.
  std::string checkout() {
    Output d = run(ctl("dispatch flows.checkout --endpoint " + ep_url_ +
                       " --input-json '{\"order\":\"o1\",\"skus\":[\"ab\",\"cde\"],\"pause\":\"0.020s\"}'"));
    EXPECT_EQ(d.status, 0) << d.out;
    const std::string id = d.out.substr(0, d.out.find('\n'));
    Output done = run(bare("status " + id + " --wait-ms 30000"));
    EXPECT_NE(done.out.find("state        completed\n"), std::string::npos) << done.out << " (logs in " << dir_ << ")";
    return id;
  }
};

// The workflow's input went in as JSON and comes back out as JSON, its
// result too; the raw Any stays beside them in --json.
TEST_F(DispatchctlJson, AWorkflowDispatchedAsJsonShowsItsInputAndOutputAsJson) {
  const std::string id = checkout();
  const std::string input = R"({"order":"o1","skus":["ab","cde"],"pause":"0.020s"})";
  const std::string output = R"({"result":{"order":"o1","total":"500","reserved":["reserved ab","reserved cde"]}})";

  Output text = run(ctl("status " + id));
  ASSERT_EQ(text.status, 0) << text.out;
  EXPECT_NE(text.out.find("input        type.googleapis.com/flows.CheckoutRequest " + input + "\n"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("output       type.googleapis.com/flows.CheckoutResponse " + output + "\n"),
            std::string::npos)
      << text.out;

  Output json = run(ctl("--json status " + id));
  ASSERT_EQ(json.status, 0) << json.out;
  EXPECT_NE(json.out.find("\"outputValue\": \""), std::string::npos) << json.out;  // the raw bytes, as before
  EXPECT_NE(json.out.find("\"decodedInput\": " + input), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"decodedOutput\": " + output + "\n}\n"), std::string::npos) << json.out;

  // A descriptor set protoc made from the same .proto, and the environment.
  Output from_set = run(bare("--descriptor-set " + std::string(WORKFLOWS_DESCRIPTOR_SET) + " --json status " + id));
  EXPECT_NE(from_set.out.find("\"decodedOutput\": " + output), std::string::npos) << from_set.out;
  Output from_env = run("DISPATCH_PROTO=" + std::string(WORKFLOWS_PROTO) + " " + std::string(DISPATCHCTL) + " --url " +
                        api_url_ + " --api-key k1 status " + id);
  EXPECT_NE(from_env.out.find("output       type.googleapis.com/flows.CheckoutResponse " + output), std::string::npos)
      << from_env.out;

  // A .proto that imports the emitted one, found through -I.
  const std::string proto = WORKFLOWS_PROTO;
  const std::string generated_root = proto.substr(0, proto.size() - std::string("/workflows/api.proto").size());
  std::ofstream(dir_ + "ops.proto") << "syntax = \"proto3\";\npackage ops;\nimport \"workflows/api.proto\";\n"
                                       "message Note { flows.Receipt receipt = 1; }\n";
  Output imported = run(bare("-I " + generated_root + " --proto " + dir_ + "ops.proto status " + id));
  EXPECT_NE(imported.out.find("output       type.googleapis.com/flows.CheckoutResponse " + output), std::string::npos)
      << imported.out;
  Output no_path = run(bare("--proto " + dir_ + "ops.proto status " + id));
  EXPECT_EQ(no_path.status, 2) << no_path.out;
  EXPECT_NE(no_path.out.find("workflows/api.proto"), std::string::npos) << no_path.out;

  // Without message types, bytes as before.
  Output raw = run(bare("--json status " + id));
  EXPECT_EQ(raw.out.find("decoded"), std::string::npos) << raw.out;
  Output raw_text = run(bare("status " + id));
  EXPECT_NE(raw_text.out.find("output       type.googleapis.com/flows.CheckoutResponse ("), std::string::npos)
      << raw_text.out;
  EXPECT_EQ(raw_text.out.find("input "), std::string::npos) << raw_text.out;

  // list and tree decode too.
  Output list = run(ctl("--json list completed"));
  ASSERT_EQ(list.status, 0) << list.out;
  EXPECT_EQ(list.out.rfind("{\n \"calls\": [\n  {\"id\":", 0), 0u) << list.out;
  EXPECT_NE(list.out.find("\"decodedInput\":" + input), std::string::npos) << list.out;
  EXPECT_NE(list.out.find("\"decodedOutput\":{\"result\":\"200\"}"), std::string::npos) << list.out;  // a price
  Output tree = run(ctl("--json tree " + id));
  EXPECT_NE(tree.out.find("\"decodedInput\":{\"sku\":\"cde\"}"), std::string::npos) << tree.out;
  Output tree_text = run(ctl("tree " + id));
  EXPECT_NE(tree_text.out.find("output  {\"result\":\"300\"}\n"), std::string::npos) << tree_text.out;
}

// history expands the child workflow (total, which prices each sku) under
// its step, numbered 2.1, 2.2 (or wherever it stands), each step's input
// and output decoded; --depth 0 keeps to the workflow's own steps.
TEST_F(DispatchctlJson, HistoryExpandsChildWorkflowsWithTheirStepsDecoded) {
  const std::string id = checkout();

  Output text = run(ctl("history " + id));
  ASSERT_EQ(text.status, 0) << text.out;
  EXPECT_NE(text.out.find("\ninput     {\"order\":\"o1\""), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("\noutput    {\"result\":{\"order\":\"o1\",\"total\":\"500\""), std::string::npos) << text.out;
  EXPECT_NE(text.out.find("steps     5\n"), std::string::npos) << text.out;  // reserve, total, reserve, sleep, audit
  std::string total_label;
  int prices = 0;
  for (const std::string& line : lines_of(text.out)) {
    if (line.find("  flows.total  ") != std::string::npos) {
      total_label = line.substr(line.find_first_not_of(' '), line.find("  +") - line.find_first_not_of(' '));
    }
    if (line.find("    flows.price") != std::string::npos) {  // indented under total
      ++prices;
      ASSERT_FALSE(total_label.empty()) << text.out;
      EXPECT_EQ(line.find(total_label + "." + std::to_string(prices) + "  +"), line.find_first_not_of(' ')) << line;
      EXPECT_NE(line.find("completed: flows.PriceResponse"), std::string::npos) << line;
    }
  }
  EXPECT_EQ(prices, 2) << text.out;
  EXPECT_NE(text.out.find("        input   {\"sku\":\"ab\"}\n        output  {\"result\":\"200\"}\n"), std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("      input   {\"skus\":[\"ab\",\"cde\"]}\n      output  {\"result\":\"500\"}\n"),
            std::string::npos)
      << text.out;
  EXPECT_NE(text.out.find("dispatch.sleep"), std::string::npos) << text.out;

  Output shallow = run(ctl("history " + id + " --depth 0"));
  ASSERT_EQ(shallow.status, 0) << shallow.out;
  EXPECT_EQ(shallow.out.find("flows.price"), std::string::npos) << shallow.out;
  EXPECT_EQ(shallow.out.find(".1  +"), std::string::npos) << shallow.out;
  EXPECT_NE(shallow.out.find("  flows.total  "), std::string::npos) << shallow.out;
  EXPECT_EQ(run(ctl("history " + id + " --depth x")).status, 2);

  Output json = run(ctl("--json history " + id));
  ASSERT_EQ(json.status, 0) << json.out;
  EXPECT_EQ(json.out.rfind("{\"workflow\":{\"id\":\"" + id + "\"", 0), 0u) << json.out;
  const std::size_t total = json.out.find("\"function\":\"flows.total\"");
  ASSERT_NE(total, std::string::npos) << json.out;
  const std::size_t nested = json.out.find(",\"steps\":[{\"step\":1,\"madeMs\":", total);
  ASSERT_NE(nested, std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"decodedOutput\":{\"result\":\"500\"}", total), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"function\":\"flows.price\"", nested), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("{\"step\":2,", nested), std::string::npos) << json.out;
  EXPECT_NE(json.out.find("\"decodedInput\":{\"sku\":\"cde\"}", nested), std::string::npos) << json.out;
  EXPECT_EQ(run(ctl("--json history " + id + " --depth 0")).out.find("flows.price"), std::string::npos);
  // The timer: its Duration in, a google.protobuf.Empty out, which no
  // .proto given declares (the well-known types are always known).
  EXPECT_NE(json.out.find("\"decodedInput\":\"0.020s\",\"decodedOutput\":{}"), std::string::npos) << json.out;

  // Without message types the child is still expanded, its bytes as before.
  Output raw = run(bare("--json history " + id));
  EXPECT_NE(raw.out.find("\"function\":\"flows.price\""), std::string::npos) << raw.out;
  EXPECT_EQ(raw.out.find("decoded"), std::string::npos) << raw.out;
}

// Each kind of bad input: a clear error naming what was wrong, exit status
// 2, and nothing dispatched.
TEST_F(DispatchctlJson, BadInputIsRefusedBeforeAnythingIsDispatched) {
  const std::size_t before = calls();
  auto refused = [&](const std::string& command, const std::string& says) {
    Output r = run(command);
    EXPECT_EQ(r.status, 2) << command << "\n" << r.out;
    EXPECT_NE(r.out.find(says), std::string::npos) << command << "\n" << r.out;
  };
  const std::string to = " --endpoint " + ep_url_;
  refused(ctl("dispatch flows.checkout --input-json '{\"order\":'" + to), "--input-json: the JSON is not a flows.CheckoutRequest");
  refused(ctl("dispatch flows.checkout --input-json '{\"ordr\":\"o1\"}'" + to), "ordr");
  refused(ctl("dispatch flows.checkout --input-json '{\"order\":5}'" + to), "(order): invalid value 5");
  refused(ctl("dispatch flows.checkout --input-json '{\"pause\":\"soon\"}'" + to), "Field 'pause'");
  refused(ctl("dispatch flows.checkout --type flows.Nope --input-json '{}'" + to), "unknown message type 'flows.Nope'");
  refused(ctl("dispatch flows.refund --input-json '{}'" + to), "method 'refund' for function 'flows.refund'");
  refused(bare("dispatch flows.checkout --input-json '{}'" + to), "--input-json needs the message's type");
  refused(ctl("dispatch flows.checkout --input-json '{}' --input-hex 00" + to), "not both");

  refused(bare("--descriptor-set " + dir_ + "absent.desc status x"),
          "--descriptor-set: cannot read the descriptor set '" + dir_ + "absent.desc'");
  std::ofstream(dir_ + "garbage.desc") << "not a descriptor set";
  refused(bare("--descriptor-set " + dir_ + "garbage.desc status x"), "is not a descriptor set");
  std::ofstream(dir_ + "broken.proto") << "syntax = \"proto3\";\npackage flows;\nmessage A { int32 x = ; }\n";
  refused(bare("--proto " + dir_ + "broken.proto dispatch flows.checkout --input-json '{}'" + to),
          "broken.proto:3:");
  refused(bare("--proto " + dir_ + "absent.proto status x"), "cannot read the .proto file");
  refused("DISPATCH_PROTO=" + dir_ + "broken.proto " + std::string(DISPATCHCTL) + " --url " + api_url_ +
              " status x",
          "does not parse");

  EXPECT_EQ(calls(), before);
}

}  // namespace
