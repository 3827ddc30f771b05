#pragma once
namespace a { inline namespace v1 { namespace b {
struct Inner { float x; };
struct Outer { Inner in; unsigned short n; };
[[dispatch::function]] Outer wrap(Inner i);
} } }
[[dispatch::function]] int global_fn(int x);
