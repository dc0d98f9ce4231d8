#include <cstring>

#include "core/error.h"
#include "ops/ops.h"

namespace joule::ops {
namespace {

template <typename E, size_t N>
E lookup(const std::string& name, const std::pair<const char*, E> (&table)[N], const char* kind) {
  for (const auto& [n, e] : table) {
    if (name == n) return e;
  }
  std::string known;
  for (const auto& entry : table) known += std::string(known.empty() ? "" : ", ") + entry.first;
  fail(Code::InvalidArgument, "unknown ", kind, " op '", name, "' (expected one of: ", known, ")");
}

}  // namespace

BinaryOp parse_binary(const std::string& name) {
  static const std::pair<const char*, BinaryOp> table[] = {
      {"add", BinaryOp::Add}, {"sub", BinaryOp::Sub}, {"mul", BinaryOp::Mul},         {"div", BinaryOp::Div},
      {"pow", BinaryOp::Pow}, {"maximum", BinaryOp::Maximum}, {"minimum", BinaryOp::Minimum},
      {"eq", BinaryOp::Eq},   {"ne", BinaryOp::Ne},   {"lt", BinaryOp::Lt},           {"le", BinaryOp::Le},
      {"gt", BinaryOp::Gt},   {"ge", BinaryOp::Ge}};
  return lookup(name, table, "binary");
}

UnaryOp parse_unary(const std::string& name) {
  static const std::pair<const char*, UnaryOp> table[] = {
      {"neg", UnaryOp::Neg},         {"abs", UnaryOp::Abs},       {"exp", UnaryOp::Exp},
      {"log", UnaryOp::Log},         {"sqrt", UnaryOp::Sqrt},     {"rsqrt", UnaryOp::Rsqrt},
      {"tanh", UnaryOp::Tanh},       {"sigmoid", UnaryOp::Sigmoid}, {"relu", UnaryOp::Relu},
      {"gelu", UnaryOp::Gelu},       {"silu", UnaryOp::Silu},     {"sign", UnaryOp::Sign},
      {"square", UnaryOp::Square},   {"reciprocal", UnaryOp::Reciprocal}, {"sin", UnaryOp::Sin},
      {"cos", UnaryOp::Cos},         {"floor", UnaryOp::Floor},   {"ceil", UnaryOp::Ceil},
      {"round", UnaryOp::Round},     {"log1p", UnaryOp::Log1p},   {"expm1", UnaryOp::Expm1},
      {"erf", UnaryOp::Erf}};
  return lookup(name, table, "unary");
}

ReduceOp parse_reduce(const std::string& name) {
  static const std::pair<const char*, ReduceOp> table[] = {
      {"sum", ReduceOp::Sum}, {"mean", ReduceOp::Mean},     {"max", ReduceOp::Max},      {"min", ReduceOp::Min},
      {"prod", ReduceOp::Prod}, {"argmax", ReduceOp::ArgMax}, {"argmin", ReduceOp::ArgMin}};
  return lookup(name, table, "reduce");
}

const char* reduce_name(ReduceOp op) {
  switch (op) {
    case ReduceOp::Sum: return "sum";
    case ReduceOp::Mean: return "mean";
    case ReduceOp::Max: return "max";
    case ReduceOp::Min: return "min";
    case ReduceOp::Prod: return "prod";
    case ReduceOp::ArgMax: return "argmax";
    case ReduceOp::ArgMin: return "argmin";
  }
  return "reduce";
}

bool is_comparison(BinaryOp op) {
  return op == BinaryOp::Eq || op == BinaryOp::Ne || op == BinaryOp::Lt || op == BinaryOp::Le || op == BinaryOp::Gt ||
         op == BinaryOp::Ge;
}

}  // namespace joule::ops
