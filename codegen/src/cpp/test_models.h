// Hand-built models for the C++ back end's tests: what the front end would
// produce for the shop example (tests/golden/shop/api.h), so the
// emitter is tested without libclang. Test-only.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "model.h"

namespace dispatch::gen::testing {

inline TypeRef scalar(TypeKind kind, std::string cpp, unsigned bits = 0, bool is_signed = false) {
  TypeRef t;
  t.kind = kind;
  t.cpp = std::move(cpp);
  t.bits = bits;
  t.is_signed = is_signed;
  return t;
}
inline TypeRef int_type(std::string cpp, unsigned bits, bool is_signed) {
  return scalar(TypeKind::kInt, std::move(cpp), bits, is_signed);
}
inline TypeRef wrap(TypeKind kind, std::string cpp, std::vector<TypeRef> args) {
  TypeRef t;
  t.kind = kind;
  t.cpp = std::move(cpp);
  t.args = std::move(args);
  return t;
}
inline TypeRef decl(TypeKind kind, std::string cpp, std::size_t index) {
  TypeRef t;
  t.kind = kind;
  t.cpp = std::move(cpp);
  t.decl = index;
  return t;
}

// namespace shop { enum class Status { pending, paid, shipped };
//   struct Item { std::string sku; int32_t qty; double price; };
//   struct Order { std::string id; int64_t customer; std::vector<Item> items;
//     std::optional<std::string> note; Status status; std::vector<int64_t> tags; };
//   [[dispatch::function]] int64_t add(int64_t a, int64_t b);
//   [[dispatch::function]] Order place_order(const std::vector<Item>& items, std::string customer);
//   [[dispatch::function("charge_v2")]] void charge(const Order& order); }
inline Model shop_model() {
  Model m;
  m.input = "shop/api.h";
  m.include_name = "shop/api.h";
  m.stem = "api";
  m.package = "shop";
  m.service = "ApiService";
  m.cpp_namespace = "shop";
  m.proto_file = "api.proto";

  EnumDecl status;
  status.cpp = "::shop::Status";
  status.proto_name = "Status";
  status.scoped = true;
  status.underlying = int_type("int", 32, true);
  status.values = {{"pending", "STATUS_PENDING", 0}, {"paid", "STATUS_PAID", 1}, {"shipped", "STATUS_SHIPPED", 2}};
  m.enums.push_back(status);

  TypeRef str = scalar(TypeKind::kString, "std::string");
  TypeRef i32 = int_type("std::int32_t", 32, true);
  TypeRef i64 = int_type("std::int64_t", 64, true);
  TypeRef item = decl(TypeKind::kStruct, "::shop::Item", 0);
  TypeRef items = wrap(TypeKind::kVector, "std::vector<::shop::Item>", {item});

  StructDecl item_decl;
  item_decl.cpp = "::shop::Item";
  item_decl.proto_name = "Item";
  item_decl.fields = {{"sku", str, 1, {}}, {"qty", i32, 2, {}},
                      {"price", scalar(TypeKind::kDouble, "double"), 3, {}}};
  m.structs.push_back(item_decl);

  StructDecl order;
  order.cpp = "::shop::Order";
  order.proto_name = "Order";
  order.fields = {{"id", str, 1, {}},
                  {"customer", i64, 2, {}},
                  {"items", items, 3, {}},
                  {"note", wrap(TypeKind::kOptional, "std::optional<std::string>", {str}), 4, {}},
                  {"status", decl(TypeKind::kEnum, "::shop::Status", 0), 5, {}},
                  {"tags", wrap(TypeKind::kVector, "std::vector<std::int64_t>", {i64}), 6, {}}};
  m.structs.push_back(order);

  Function add;
  add.cpp = "::shop::add";
  add.cpp_namespace = "shop";
  add.name = add.remote_name = "add";
  add.params = {{"a", i64, false, {}}, {"b", i64, false, {}}};
  add.result = i64;
  add.request_message = "AddRequest";
  add.response_message = "AddResponse";
  m.functions.push_back(add);

  Function place;
  place.cpp = "::shop::place_order";
  place.cpp_namespace = "shop";
  place.name = place.remote_name = "place_order";
  place.params = {{"items", items, true, {}}, {"customer", str, false, {}}};
  place.result = decl(TypeKind::kStruct, "::shop::Order", 1);
  place.request_message = "PlaceOrderRequest";
  place.response_message = "PlaceOrderResponse";
  m.functions.push_back(place);

  Function charge;
  charge.cpp = "::shop::charge";
  charge.cpp_namespace = "shop";
  charge.name = "charge";
  charge.remote_name = "charge_v2";
  charge.params = {{"order", decl(TypeKind::kStruct, "::shop::Order", 1), true, {}}};
  charge.result.kind = TypeKind::kVoid;
  charge.request_message = "ChargeV2Request";
  charge.response_message = "ChargeV2Response";
  m.functions.push_back(charge);
  return m;
}

}  // namespace dispatch::gen::testing
