# Writes the public rating data sets that Debian's R packages ship as CSV files
# `rater,subject,item,scorecard,score` (one file per data set) into the folder
# given as the first argument, with `scales.csv` naming each one's scale.
# Used by compare.py; see docs/calibration.md, "Real data".
suppressMessages({ library(lme4); library(lmerTest); library(ordinal) })
out <- commandArgs(trailingOnly = TRUE)[1]
dir.create(out, showWarnings = FALSE, recursive = TRUE)
write_set <- function(name, rater, subject, item, scorecard, score) {
  d <- data.frame(rater = rater, subject = subject, item = item, scorecard = scorecard, score = score)
  d <- d[!is.na(d$score), ]
  write.csv(d, file.path(out, paste0(name, ".csv")), row.names = FALSE, quote = FALSE)
}
scales <- data.frame(name = character(), min = numeric(), max = numeric())

# lme4::InstEval: 73,421 ratings (1..5) of 1,128 ETH lecturers by 2,972 students;
# one rating per scorecard, most students rate a few lecturers.
data(InstEval, package = "lme4")
write_set("insteval", paste0("s", InstEval$s), paste0("d", InstEval$d), "overall",
          seq_len(nrow(InstEval)), as.integer(as.character(InstEval$y)))
scales[nrow(scales) + 1, ] <- list("insteval", 1, 5)

# lmerTest::TVbo: 8 assessors score 12 TV sets (3 sets x 4 pictures) twice on 15
# attributes (0..15): a multi-competency scorecard per assessor, product and repeat.
data(TVbo, package = "lmerTest")
attrs <- names(TVbo)[5:19]
long <- do.call(rbind, lapply(attrs, function(a) data.frame(
  rater = paste0("a", TVbo$Assessor), subject = paste0("tv", TVbo$TVset, "p", TVbo$Picture),
  item = a, scorecard = paste0("a", TVbo$Assessor, "tv", TVbo$TVset, "p", TVbo$Picture, "r", TVbo$Repeat),
  score = TVbo[[a]])))
write_set("tvbo", long$rater, long$subject, long$item, long$scorecard, long$score)
scales[nrow(scales) + 1, ] <- list("tvbo", 0, 15)

# lmerTest::carrots: 103 consumers' preference (1..7) for 12 carrot products.
data(carrots, package = "lmerTest")
write_set("carrots", paste0("c", carrots$Consumer), as.character(carrots$Product), "preference",
          seq_len(nrow(carrots)), carrots$Preference)
scales[nrow(scales) + 1, ] <- list("carrots", 1, 7)

write.csv(scales, file.path(out, "scales.csv"), row.names = FALSE, quote = FALSE)
