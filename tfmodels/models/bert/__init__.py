"""The BERT family: config, encoder and task models."""

from tfmodels.models.bert.classifier import BertClassifier
from tfmodels.models.bert.config import BertConfig
from tfmodels.models.bert.encoder import INPUT_NAMES, BertEncoder, bert_inputs
from tfmodels.models.bert.pretrainer import BertPretrainer
from tfmodels.models.bert.span_qa import BertSpanQA
from tfmodels.models.bert.task import BertTask
from tfmodels.models.bert.token_classifier import BertTokenClassifier

__all__ = [
    "INPUT_NAMES",
    "BertClassifier",
    "BertConfig",
    "BertEncoder",
    "BertPretrainer",
    "BertSpanQA",
    "BertTask",
    "BertTokenClassifier",
    "bert_inputs",
]
