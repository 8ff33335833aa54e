# lme4's crossed random-effects model on each half of a split:
#   lmer(score ~ 1 + (1 | rater) + (1 | subject))          one item
#   lmer(score ~ item + (1 | rater) + (1 | subject))       several items
# Arguments: pairs of `input.csv output.csv`; each output holds `subject,score`
# (the subject's conditional mode). Used by compare.py.
suppressMessages(library(lme4))
args <- commandArgs(trailingOnly = TRUE)
for (i in seq(1, length(args), by = 2)) {
  d <- read.csv(args[i], colClasses = c("character", "character", "character", "character", "numeric"))
  f <- if (length(unique(d$item)) > 1) score ~ item + (1 | rater) + (1 | subject) else score ~ 1 + (1 | rater) + (1 | subject)
  m <- suppressMessages(suppressWarnings(lmer(f, data = d)))
  re <- ranef(m)$subject
  write.csv(data.frame(subject = rownames(re), score = re[, 1]), args[i + 1], row.names = FALSE, quote = FALSE)
}
