#pragma once
#include <vector>
struct Node { int v; std::vector<Node> kids; };
[[dispatch::function]] Node tree(Node n);
