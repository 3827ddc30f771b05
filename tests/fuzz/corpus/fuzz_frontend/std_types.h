#pragma once
#include <string>
#include <vector>
struct Node { std::string name; std::vector<int> kids; };
[[dispatch::function]] std::vector<Node> tree(const std::vector<Node>& n, std::string s);
