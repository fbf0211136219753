#pragma once
/// The demo's built-in sentences: varied English (topics, lengths, punctuation, numbers, an
/// accented word, near-paraphrases so the similarity ranking has structure to keep).

#include <string>
#include <vector>

namespace qcodec::examples::bert {

inline std::vector<std::string> demo_sentences() {
  return {
      "A man is playing a guitar on the stage.",
      "Someone is performing music with a guitar in front of an audience.",
      "The cat sleeps on the warm windowsill all afternoon.",
      "A kitten is napping in the sun by the window.",
      "The stock market fell sharply after the interest rate announcement.",
      "Shares dropped when the central bank raised rates by 0.5%.",
      "How do I reset my password if I forgot my email address?",
      "I can't log in to my account; what should I do?",
      "Photosynthesis converts light energy into chemical energy in plants.",
      "Plants use sunlight to make sugar from carbon dioxide and water.",
      "The recipe calls for two cups of flour, three eggs and a pinch of salt.",
      "Preheat the oven to 180 degrees before baking the cake.",
      "The football match ended in a 2-2 draw after extra time.",
      "Our team won the championship final last Sunday!",
      "Quantum computers exploit superposition and entanglement.",
      "The café on the corner serves excellent crème brûlée.",
      "Please submit the quarterly report by Friday, March 14th.",
      "The train to Berlin was delayed by forty-five minutes.",
      "She studied Renaissance painting in Florence for a year.",
      "Regular exercise lowers the risk of heart disease.",
      "Running every morning keeps you healthy and fit.",
      "The new smartphone has a faster processor and a better camera.",
      "It rained all day, so the picnic was cancelled.",
      "Large language models are trained on vast amounts of text from the internet, "
      "then fine-tuned to follow instructions, which raises questions about data quality, "
      "evaluation and the cost of inference on commodity hardware.",
      "Why?",
  };
}

}  // namespace qcodec::examples::bert
