// Call and result envelopes on the wire (format in envelope.h), and running a call in a worker.
#include "mproc/envelope.h"

#include <string>
#include <string_view>

#include "mproc/errors.h"
#include "mproc/task.h"

#include "wire.h"

namespace mproc {
namespace {

constexpr std::uint8_t kCallTag = 'C';
constexpr std::uint8_t kResultTag = 'R';

}  // namespace

void encode_call_into(const CallView& call, std::string& out) {
  out.reserve(out.size() + 13 + call.name.size() + call.args.size());
  detail::wire::put_u8(out, kCallTag);
  detail::wire::put_u64(out, call.task_id);
  detail::wire::put_string(out, call.name, "task name");
  out.append(call.args);
}

std::string encode_call(const CallView& call) {
  std::string out;
  encode_call_into(call, out);
  return out;
}

std::string encode_call(const CallEnvelope& call) { return encode_call(view_of(call)); }

CallView decode_call_view(std::string_view bytes) {
  detail::wire::Reader in(bytes, "call envelope");
  if (in.u8() != kCallTag) in.fail("not a call envelope");
  CallView call;
  call.task_id = in.u64();
  call.name = in.string();
  if (call.name.empty()) in.fail("empty task name");
  call.args = in.rest();
  return call;
}

CallEnvelope decode_call(std::string_view bytes) {
  CallView view = decode_call_view(bytes);
  return CallEnvelope{view.task_id, std::string(view.name), std::string(view.args)};
}

void encode_result_into(const ResultView& result, std::string& out) {
  out.reserve(out.size() + 10 + result.payload.size());
  detail::wire::put_u8(out, kResultTag);
  detail::wire::put_u64(out, result.task_id);
  detail::wire::put_u8(out, static_cast<std::uint8_t>(result.status));
  out.append(result.payload);
}

std::string encode_result(const ResultView& result) {
  std::string out;
  encode_result_into(result, out);
  return out;
}

std::string encode_result(const ResultEnvelope& result) { return encode_result(view_of(result)); }

ResultView decode_result_view(std::string_view bytes) {
  detail::wire::Reader in(bytes, "result envelope");
  if (in.u8() != kResultTag) in.fail("not a result envelope");
  ResultView result;
  result.task_id = in.u64();
  std::uint8_t status = in.u8();
  if (status != static_cast<std::uint8_t>(ResultStatus::kOk) &&
      status != static_cast<std::uint8_t>(ResultStatus::kException)) {
    in.fail("unknown status");
  }
  result.status = static_cast<ResultStatus>(status);
  result.payload = in.rest();
  return result;
}

ResultEnvelope decode_result(std::string_view bytes) {
  ResultView view = decode_result_view(bytes);
  return ResultEnvelope{view.task_id, view.status, std::string(view.payload)};
}

ResultEnvelope run_call(const CallView& call) noexcept {
  ResultEnvelope result;
  result.task_id = call.task_id;
  try {
    result.payload = invoke_task(call.name, call.args);
  } catch (...) {
    result.status = ResultStatus::kException;
    try {
      result.payload = capture_current_exception();
    } catch (...) {
      // Out of memory even for the capture: an empty payload stands for std::bad_alloc.
      result.payload.clear();
    }
  }
  return result;
}

ResultEnvelope run_call(const CallEnvelope& call) noexcept { return run_call(view_of(call)); }

}  // namespace mproc
