// Seed j: examples/manager_dict_list prints the child's changes to a Manager dict and list.
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "support.h"

namespace mproc {
namespace {

TEST(ManagerDictListExample, ChildChangesDictAndListAsPython) {
  auto r = test::run_program(std::string(MPROC_EXAMPLES_DIR) + "/manager_dict_list");
  ASSERT_FALSE(r.timed_out);
  EXPECT_EQ(r.exit_code, 0) << r.err;
  EXPECT_EQ(test::lines_of(r.out), (std::vector<std::string>{"{1: '1', '2': 2, 0.25: None}",
                                                             "[9, 8, 7, 6, 5, 4, 3, 2, 1, 0]"}));
}

}  // namespace
}  // namespace mproc
