#include "edge/rules/yaml_document.h"

#include <yaml-cpp/depthguard.h>
#include <yaml-cpp/eventhandler.h>
#include <yaml-cpp/parser.h>
#include <yaml-cpp/yaml.h>

#include <sstream>
#include <vector>

namespace edge::rules {
namespace {

// Records where each document of a YAML stream starts; ignores everything else.
class DocumentStarts final : public YAML::EventHandler {
 public:
  void OnDocumentStart(const YAML::Mark& mark) override { marks.push_back(mark); }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t,
                const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                       YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t,
                  YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}

  std::vector<YAML::Mark> marks;
};

Status ErrorAt(const std::string& source, const YAML::Mark& mark, const std::string& message) {
  const int line = mark.line < 0 ? 1 : mark.line + 1;
  const int column = mark.column < 0 ? 1 : mark.column + 1;
  return Status::Error(source + ":" + std::to_string(line) + ":" + std::to_string(column) + ": " +
                       message);
}

}  // namespace

Result<YamlDocuments> CountYamlDocuments(const std::string& text, const std::string& source_name) {
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    DocumentStarts starts;
    // At most three documents are read; a document that starts where the previous one
    // started consumed nothing, which is the looping case: report it as a syntax error.
    while (starts.marks.size() < 3 && parser.HandleNextDocument(starts)) {
      const size_t n = starts.marks.size();
      if (n >= 2 && starts.marks[n - 1].pos == starts.marks[n - 2].pos) {
        const YAML::Mark& at = starts.marks[n - 1];
        const size_t pos = static_cast<size_t>(at.pos);
        const bool printable = pos < text.size() && text[pos] > ' ' && text[pos] < 0x7f;
        return ErrorAt(source_name, at,
                       printable ? "unexpected '" + text.substr(pos, 1) + "'"
                                 : std::string("unexpected character"));
      }
    }
    YamlDocuments out;
    out.count = static_cast<int>(std::min<size_t>(starts.marks.size(), 2));
    if (starts.marks.size() >= 2) {
      out.second_line = starts.marks[1].line + 1;
      out.second_column = starts.marks[1].column + 1;
    }
    return out;
  } catch (const YAML::DeepRecursion& e) {
    return ErrorAt(source_name, e.mark, "nesting too deep");
  } catch (const YAML::Exception& e) {
    return ErrorAt(source_name, e.mark, e.msg);
  } catch (const std::exception& e) {
    return Status::Error(source_name + ": " + e.what());
  }
}

}  // namespace edge::rules
