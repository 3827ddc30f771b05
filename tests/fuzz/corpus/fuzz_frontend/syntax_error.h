[[dispatch::function]] int f(int a;
struct { int x
